"""Google Gemini: ``kind.py`` declares its facts, ``adapter.py`` speaks the native v1beta API
(``wire.py`` reads its responses, ``error_map.py`` maps its errors)."""
