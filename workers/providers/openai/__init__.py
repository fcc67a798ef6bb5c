"""OpenAI: ``kind.py`` declares its facts, ``adapter.py`` speaks its API."""
