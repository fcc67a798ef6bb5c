"""Fixtures for tests of shared/: the fake installation and signing keys the manifest tests use."""

from tests.unit.security_fixtures import install, keypair, make_keypair

__all__ = ["install", "keypair", "make_keypair"]
