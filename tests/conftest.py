"""Fixtures every test folder may ask for (each is started only by the tests that use it)."""

pytest_plugins = ["tests.pg_server"]
