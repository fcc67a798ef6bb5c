"""Who is in the benchmarked stack: the sandbox's default, the starter config's providers.

The sandbox runs, from emulators/providers.json, the providers the starter config names
(decision D60), so the bench reads the same two files.

One worker per provider, reported as ``worker:<provider>``; and the provider that serves the
default chat route, whose emulator the ``direct`` target calls and the baseline server
proxies (both speak its wire format, which the bench assumes is OpenAI's). Deriving these
here, rather than listing them in each module, keeps the report's columns in step when a
provider kind (and its emulator) joins the config.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson

from cli.config_folder import STARTER_PROVIDERS

__all__ = ["DEFAULT_KIND", "DEFAULT_PROVIDER", "PROVIDERS", "WORKERS"]

_CONFIG: dict[str, Any] = orjson.loads(files("emulators").joinpath("providers.json").read_bytes())

PROVIDERS: tuple[str, ...] = tuple(p for p in _CONFIG["providers"] if p in STARTER_PROVIDERS["providers"])
WORKERS: tuple[str, ...] = tuple(f"worker:{name}" for name in PROVIDERS)
# The default chat route's provider, and its kind (which names its emulator and its key).
DEFAULT_PROVIDER: str = _CONFIG["defaults"]["chat"]["provider"]
DEFAULT_KIND: str = _CONFIG["providers"][DEFAULT_PROVIDER]["kind"]
