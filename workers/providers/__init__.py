"""Provider kinds: one folder per kind (``<kind>/kind.py`` its facts, ``<kind>/adapter.py`` its API).

This package's ``__init__``, ``registry`` and every ``<kind>/kind.py`` import nothing but
``shared``: the gateway and config validation read kind facts through
``workers.providers.registry`` without loading any worker code (tests/unit/test_layering.py).
Worker-side code: ``adapters`` (builds a provider's adapter), ``base``, ``http_base``,
``openai_compatible`` and each ``<kind>/adapter.py``.
"""
