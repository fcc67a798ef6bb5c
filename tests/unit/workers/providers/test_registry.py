"""A provider kind is one folder plus one registry line.

Every fact about a kind lives in its declaration (``workers/providers/<kind>/kind.py``) and
everything else reads it through ``workers.providers.registry``: no other source file
spells a kind's name as a string literal, so adding a kind cannot be half done by
forgetting one of many tables.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cli.stack import REPO_ROOT
from shared.config import KIND_CAPABILITIES, PROVIDER_KINDS, ProviderConfig
from workers.providers.adapters import adapter_class
from workers.providers.registry import KINDS

# Every package of code that runs: the processes, the operator CLI, the benchmark and the UAT.
_SOURCE_PACKAGES = ("gateway", "shared", "stdio_front", "workers", "cli", "harness", "docgen", "bench", "uat")
# A kind's name as a word anywhere in a string: "worker-NAME", an f-string's "restart NAME ...".
_KIND_WORD = re.compile(r"\b(" + "|".join(re.escape(name) for name in KINDS) + r")\b")
_PROVIDERS = REPO_ROOT / "workers" / "providers"


def _string_literals(path: Path) -> set[str]:
    """String constants in the code itself (docstrings and comments are prose, not code)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def _kind_names_outside_their_folders() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in _SOURCE_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            named = {m for text in _string_literals(path) for m in _KIND_WORD.findall(text)}
            outside = [k for k in named if not path.is_relative_to(_PROVIDERS / k)]
            if outside:
                found[str(path.relative_to(REPO_ROOT))] = sorted(outside)
    return found


def test_no_kind_name_is_spelled_outside_its_folder() -> None:
    assert _kind_names_outside_their_folders() == {}


def test_every_folder_is_registered_and_every_kind_has_a_folder() -> None:
    folders = {p.parent.name for p in _PROVIDERS.glob("*/kind.py")}
    assert folders == set(KINDS)
    assert all(spec.adapter.startswith(f"workers.providers.{name}.") for name, spec in KINDS.items())


def test_everything_reads_the_declarations() -> None:
    assert tuple(KINDS) == PROVIDER_KINDS
    for name, spec in KINDS.items():
        assert KIND_CAPABILITIES[name] == spec.capabilities == adapter_class(name).capabilities
        keyless = {"kind": name, "base_url": spec.default_base_url}
        if spec.needs_key:
            assert "needs a key" in str(_refusal(keyless))
        else:
            assert ProviderConfig.model_validate(keyless).kind == name


def _refusal(data: dict[str, str]) -> Exception:
    try:
        ProviderConfig.model_validate(data)
    except Exception as exc:
        return exc
    raise AssertionError(f"{data} was accepted without a key")
