"""The process boundary in the source tree: gateway/ and workers/ never import each other.

Each side meets the other only over the wire protocol; code both need lives in shared/,
which imports neither. A worker loading gateway code (or the reverse) would also drag
the other side's dependencies into its memory budget.

One exception, by design: provider-kind *declarations* (``workers/providers/registry.py``
and each ``workers/providers/<kind>/kind.py``) may be read by the gateway and by
``shared.config``, because a kind is one folder. Of the project they import nothing but
``shared`` (a kind's options model uses pydantic, as ``shared`` does), and importing them
loads no worker code (checked below).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT

_FORBIDDEN = {"gateway": {"workers"}, "workers": {"gateway"}, "shared": {"gateway", "workers", "cli"}}
_PROVIDERS = REPO_ROOT / "workers" / "providers"
# The declaration modules and the package inits Python runs on the way to them.
_DECLARATIONS = [REPO_ROOT / "workers" / "__init__.py", _PROVIDERS / "__init__.py", _PROVIDERS / "registry.py",
                 *sorted(_PROVIDERS.glob("*/kind.py")), *sorted(_PROVIDERS.glob("*/__init__.py"))]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_declaration(module: str) -> bool:
    """``workers.providers.registry[.X]`` or ``workers.providers.<kind>.kind[.X]``."""
    parts = module.split(".")
    return parts[:3] == ["workers", "providers", "registry"] or (
        parts[:2] == ["workers", "providers"] and len(parts) >= 4 and parts[3] == "kind")


def _offending(path: Path, forbidden: set[str]) -> list[str]:
    return sorted({m for m in _imports(path) if m.split(".")[0] in forbidden and not _is_declaration(m)})


@pytest.mark.parametrize("package", sorted(_FORBIDDEN))
def test_a_package_does_not_import_the_other_side(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): _offending(path, _FORBIDDEN[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_kind_declarations_import_only_shared() -> None:
    assert len(_DECLARATIONS) > 4
    offenders = {}
    for path in _DECLARATIONS:
        imported = {m.split(".")[0] for m in _imports(path) if not _is_declaration(m)}
        local = {m for m in imported if (REPO_ROOT / m).is_dir() or (REPO_ROOT / f"{m}.py").exists()}
        if local - {"shared"}:
            offenders[str(path.relative_to(REPO_ROOT))] = sorted(local - {"shared"})
    assert offenders == {}


def test_reading_kind_facts_loads_no_worker_code() -> None:
    code = ("import sys, shared.config, workers.providers.registry as r; assert r.KINDS; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'zmq', 'gateway') "
            "or (m.startswith('workers.') and m != 'workers.providers' and not m.startswith('workers.providers.'))"
            " or m.endswith(('.adapter', '.adapters', '.base', '.http_base', '.openai_compatible'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
