"""``python -m bench instructions``: reading callgrind's totals, and the report."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.instructions import instructions_markdown, totals_of


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_totals_of_reads_a_real_callgrind_dump(tmp_path: Path) -> None:
    out = tmp_path / "true.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "/bin/true"],
                   check=True, capture_output=True, timeout=120)
    total = totals_of(out)
    stated = next(line for line in out.read_text().splitlines() if line.startswith(("totals:", "summary:")))
    assert total == int(stated.split()[1])
    assert total > 10_000  # even /bin/true runs the dynamic loader's tens of thousands


def test_totals_of_refuses_a_file_without_totals(tmp_path: Path) -> None:
    bad = tmp_path / "bad.out"
    bad.write_text("version: 1\ncreator: nobody\n")
    with pytest.raises(RuntimeError, match="no totals line"):
        totals_of(bad)


def test_markdown_has_a_row_per_process_and_a_column_per_op() -> None:
    summary = {"config": {"calls": 200, "warmup": 20, "provider": "openai", "model": "gpt-4o-mini"},
               "per_call": {"worker": {"chat": 930303, "chatStream": 3601610},
                            "gateway": {"chat": 743451, "chatStream": 2827055}},
               "callgrind_dir": "/x/callgrind"}
    text = instructions_markdown(summary)
    assert "| worker | 930,303 | 3,601,610 |" in text
    assert "| gateway | 743,451 | 2,827,055 |" in text
    assert "| process | chat | chatStream |" in text
