"""The test and demo harness: a throwaway stack against the bundled emulators (``harness.sandbox``)
and the demo that drives it with the official MCP client (``harness.demo``).

Not an operator command and not a production process: the integration tests, the benchmark
and UAT import it, and of the ``llm-caller`` commands only ``try`` and ``demo`` do (checked
by tests/unit/test_layering.py). It ships in the wheel because those two run from an
installed package.
"""
