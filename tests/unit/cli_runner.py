"""Run `llm-caller ARGS...` in-process for unit tests: (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


def run_cli(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> tuple[int, str, str]:
    from cli.main import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects bad arguments this way
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
