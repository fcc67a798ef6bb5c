"""Ollama: ``kind.py`` declares its facts, ``adapter.py`` speaks its native API (``/api/...``)."""
