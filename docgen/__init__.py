"""Generators of the reference documents from the code: ``docs/interface.md`` (``docgen.interface``)
and the error tables in README.md and runbook/errors.md (``docgen.error_tables``).

Run from a checkout as ``python -m docgen [--write | --check]``. A development tool, not
part of the product: it does not ship in the wheel, and nothing but the tests imports it.
"""
