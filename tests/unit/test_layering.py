"""The process boundary in the source tree: gateway/ and workers/ never import each other.

Each side meets the other only over the wire protocol; code both need lives in shared/,
which imports neither. A worker loading gateway code (or the reverse) would also drag
the other side's dependencies into its memory budget.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT

_FORBIDDEN = {"gateway": {"workers"}, "workers": {"gateway"}, "shared": {"gateway", "workers", "cli"}}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(_FORBIDDEN))
def test_a_package_does_not_import_the_other_side(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(_imported_packages(path) & _FORBIDDEN[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
