"""The error tables in README.md and runbook/errors.md are generated from each type's policy."""

from __future__ import annotations

import pytest

from docgen import error_tables
from docgen.error_tables import REGIONS, ROOT, render, stale
from shared import errors


def test_committed_error_tables_match_the_code() -> None:
    assert stale() == [], "an error table is stale: run `.venv/bin/python -m docgen --write` and commit"


def test_a_hand_edit_inside_a_region_is_drift_and_the_prose_outside_is_kept() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tampered = readme.replace("| `timeout` | yes | yes | yes | no |", "| `timeout` | no | no | no | yes |")
    assert tampered != readme
    assert render(tampered, REGIONS["README.md"]) == readme
    edited_prose = readme.replace("## Errors\n", "## Errors (edited)\n")
    assert render(edited_prose, REGIONS["README.md"]) == edited_prose


def test_a_file_without_its_marked_region_is_refused() -> None:
    with pytest.raises(RuntimeError, match="no marked region errors"):
        render("# README\n\nno table here\n", REGIONS["README.md"])


def test_every_type_is_in_the_readme_and_in_exactly_one_runbook_table() -> None:
    readme = "\n".join(error_tables.readme_table())
    client = "\n".join(error_tables.runbook_table(False)())
    transient = "\n".join(error_tables.runbook_table(True)())
    for type_name in errors.ERROR_TYPES:
        row = f"| `{type_name}` |"
        assert row in readme
        assert (row in client) != (row in transient)
        assert (row in transient) is errors.error_class(type_name).policy.retryable
