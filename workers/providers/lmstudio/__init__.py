"""LM Studio: ``kind.py`` declares its facts, ``adapter.py`` speaks its OpenAI-compatible API."""
