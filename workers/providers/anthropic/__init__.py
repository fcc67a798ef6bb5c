"""Anthropic: ``kind.py`` declares its facts, ``adapter.py`` speaks the Messages API."""
