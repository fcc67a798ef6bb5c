"""Operator-facing references that must follow the code: docs/interface.md and .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import shared.settings
from docgen.interface import DOC_PATH, generate
from gateway.tool_table import TOOL_LIST
from shared.errors import ERROR_TYPES

ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def test_committed_interface_doc_matches_the_code() -> None:
    assert DOC_PATH.read_text() == generate(), (
        "docs/interface.md is stale: run `.venv/bin/python -m docgen --write` and commit the result"
    )


def test_doc_names_every_tool_and_every_error_type() -> None:
    text = generate()
    for tool in TOOL_LIST:
        assert f"\n### {tool.name}\n" in text
    for error_type in ERROR_TYPES:
        assert f"| `{error_type}` |" in text


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"\bLLMC_[A-Z_]+\b", shared.settings.__doc__ or ""))
    assert documented, "shared/settings.py no longer lists its variables in its docstring"
    missing = sorted(documented - set(re.findall(r"\bLLMC_[A-Z_]+\b", ENV_EXAMPLE.read_text())))
    assert not missing, f".env.example lacks {', '.join(missing)} (listed in shared/settings.py)"
