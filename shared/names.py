"""The one definition of a name in the config files: a provider's and a client's.

Standard library only, so every process may read it: the worker checks its CURVE
certificate names with it without loading the config models (``shared.config``).
"""

from __future__ import annotations

__all__ = ["NAME_PATTERN"]

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
