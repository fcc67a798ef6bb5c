"""Run `llm-caller ARGS...` in-process for unit tests: (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest


def run_cli(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> tuple[int, str, str]:
    from cli.main import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects bad arguments this way
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def edit_providers(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the providers.json in config ``folder``, as an operator's edit would."""
    file = folder / "providers.json"
    data = orjson.loads(file.read_bytes())
    change(data)
    file.write_bytes(orjson.dumps(data))
