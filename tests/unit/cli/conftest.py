"""Fixtures for tests of cli/: the in-process CLI, fake installation and keys the security commands use."""

from tests.unit.security_fixtures import install, keypair, run

__all__ = ["install", "keypair", "run"]
