"""``llm-caller usage``: the ledger summed per client, model, day or provider, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import calendar
import csv
import io
import time
from pathlib import Path

import orjson
import pytest

from cli.usage_cmd import parse_since
from gateway.store.records import LedgerRow
from gateway.store.sqlite import SqliteStore
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token
from tests.unit.cli_runner import run_cli

HOUR = 3600.0


def _row(rid: str, ago_h: float, client: str, model: str, cost: float | None, outcome: str = "ok") -> LedgerRow:
    at = time.time() - ago_h * HOUR
    return LedgerRow(rid, at, client, "chat", "openai", model, outcome, None if outcome == "ok" else outcome, 9.0,
                     100, 10, 40, 0, cost, False)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A run folder whose store holds a few calls, and a config folder whose registry gives alice a budget."""
    run_dir, config_dir = tmp_path / "run", tmp_path / "config"
    run_dir.mkdir(mode=0o700)
    config_dir.mkdir()
    monkeypatch.delenv("LLMC_STORE_URL", raising=False)
    rows = [_row("a1", 1, "alice", "gpt-4o-mini", 0.25), _row("a2", 2, "alice", "gpt-4o", 0.5),
            _row("b1", 3, "bob", "gpt-4o-mini", None, "rate_limited"), _row("old", 24 * 10, "alice", "gpt-4o", 9.0)]

    async def fill() -> None:
        store = SqliteStore(f"sqlite:///{run_dir / 'store.db'}")
        await store.open()
        await store.record_usage(rows)
        await store.close()
    asyncio.run(fill())
    entry = {"token_sha256": hash_token(new_token()), "budget": {"usd_per_day": 2.0, "tokens_per_day": 1000}}
    write_json_atomic(config_dir / "client-registry.json", {"clients": {"alice": entry}}, mode=0o600)
    return run_dir, config_dir


def _args(folders: tuple[Path, Path], *more: str) -> list[str]:
    return ["usage", "--run-dir", str(folders[0]), "--config-dir", str(folders[1]), *more]


def test_the_table_sums_per_client_over_the_last_seven_days(capsys: pytest.CaptureFixture[str],
                                                             folders: tuple[Path, Path]) -> None:
    code, out, err = run_cli(capsys, _args(folders))
    print(out)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["client", "calls", "errors", "input", "cached", "output", "reasoning", "cost", "USD",
                                "unpriced"]
    assert lines[1].split() == ["alice", "2", "0", "200", "20", "80", "0", "0.750000", "0"]
    assert lines[2].split() == ["bob", "1", "1", "100", "10", "40", "0", "0.000000", "1"]
    assert "unknown price" in lines[3]


def test_json_by_model_for_one_client_with_its_budgets_left(capsys: pytest.CaptureFixture[str],
                                                            folders: tuple[Path, Path]) -> None:
    code, out, err = run_cli(capsys, _args(folders, "--client", "alice", "--by", "model", "--since", "30d",
                                           "--json"))
    assert code == 0, err
    data = orjson.loads(out)
    assert [(r["key"], r["calls"], r["cost_usd"]) for r in data["rows"]] == [
        ("openai/gpt-4o", 2, 9.5), ("openai/gpt-4o-mini", 1, 0.25)]
    budgets = {b["budget"]: b for b in data["budgets"]}
    assert set(budgets) == {"usd_per_day", "tokens_per_day"}
    assert budgets["usd_per_day"]["limit"] == 2.0 and budgets["usd_per_day"]["resets"].endswith("T00:00:00Z")
    # Today's spend is what the ledger has for today (the two recent calls may straddle midnight).
    assert budgets["usd_per_day"]["used"] in (0.0, 0.25, 0.5, 0.75)
    assert budgets["tokens_per_day"]["left"] == 1000 - budgets["tokens_per_day"]["used"]


def test_csv_by_day(capsys: pytest.CaptureFixture[str], folders: tuple[Path, Path]) -> None:
    code, out, err = run_cli(capsys, _args(folders, "--by", "day", "--csv", "--since", "30d"))
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["day", "calls", "errors"]
    assert sum(int(r[1]) for r in rows[1:]) == 4 and len(rows) >= 3


def test_bad_input_is_one_clear_line(capsys: pytest.CaptureFixture[str], folders: tuple[Path, Path],
                                     tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, _args(folders, "--since", "yesterday"))
    assert code == 2 and "'yesterday' is not a time" in err
    code, _, err = run_cli(capsys, _args(folders, "--client", "Not A Name"))
    assert code == 2 and "is not a client name" in err
    code, _, err = run_cli(capsys, ["usage", "--run-dir", str(tmp_path / "run"), "--config-dir", str(folders[1])])
    assert code == 0  # the same store
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    code, _, err = run_cli(capsys, ["usage", "--run-dir", str(blocked / "run")])
    assert code == 2 and err.startswith("llm-caller: cannot read the usage ledger:") and "Traceback" not in err


def test_since_accepts_durations_and_utc_days() -> None:
    now = 1_000_000.0
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("90m", now) == now - 5400
    assert parse_since("2026-12-01") == calendar.timegm((2026, 12, 1, 0, 0, 0))
    with pytest.raises(argparse.ArgumentTypeError):
        parse_since("7w", now)
