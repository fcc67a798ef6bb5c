"""Every shipped providers*.json example validates, and routes every capability somewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.router import Router
from shared.config import load_providers

CONFIG = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize("path", sorted(CONFIG.glob("providers*.json")), ids=lambda p: p.name)
def test_example_validates_and_has_a_default_for_each_capability(path: Path) -> None:
    providers = load_providers(path)
    router = Router(providers, lambda p, c: ["discovered-model"], lambda p: True)
    for capability in ("chat", "chatStream", "embed"):
        route = router.route(capability, None, None, None)
        assert route.provider in providers.providers
        assert all(f.provider in providers.providers for f in router.fallbacks(capability, route, None))
