"""Provider kinds: one folder per kind (``<kind>/kind.py`` its facts, ``<kind>/adapter.py`` its API).

This package's ``__init__``, ``registry`` and every ``<kind>/kind.py`` import nothing but
``shared``: the gateway and config validation read kind facts through
``workers.providers.registry`` without loading any worker code (tests/unit/test_layering.py).
Worker-side code: ``adapters`` (builds a provider's adapter), ``base``, ``http_base`` (the
generic JSON-over-HTTP adapter), ``openai_compatible`` (the OpenAI wire format, which
LM Studio's adapter subclasses) and each ``<kind>/adapter.py``.

Adding a kind ``NAME``:

1. ``NAME/__init__.py``; ``NAME/kind.py`` with ``KIND = KindSpec(name="NAME", ...)`` (every
   field of ``shared.kind_spec.KindSpec``); ``NAME/adapter.py`` with the class that
   ``KIND.adapter`` names, subclassing ``http_base.HttpAdapter`` (or
   ``openai_compatible.OpenAICompatibleAdapter``), with ``kind = KIND.name``,
   ``capabilities = KIND.capabilities``, its ``map_error`` (the error map) and ``list_models``
   (the listing the worker and the setup assistant's probe both use).
2. One entry in ``registry.py``.
3. Outside the code: its emulator (``emulators/``) and its provider in
   ``emulators/providers.json``; config examples if it should ship in them; regenerate
   ``docs/interface.md`` (``python -m docgen --write``) and ``config/schema/``
   (``llm-caller config schema``). ``tests/unit/workers/providers/test_registry.py`` fails if the name is
   spelled as a string anywhere else in the code.
"""
