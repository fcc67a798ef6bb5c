"""``llm-caller usage``: what was spent, from the usage ledger in the store (gateway.ledger).

Reads the same store as the gateway (``Settings.store_url``: ``LLMC_STORE_URL``, else SQLite
in the state folder, or in a named run folder) while the stack runs or not. Rows still in a
running gateway's batch window (200 ms by default) are not in it yet. With ``--client``, each
budget of that client is shown with what is left of it (days and months are UTC).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import csv
import io
import re
import sys
import time
from typing import Any

import orjson

from cli.options import CommandRefused, add_config_dir, add_run_dir, reporting, resolve_settings
from gateway.store import open_store
from gateway.store.base import Store
from gateway.store.records import SpentRow, UsageBy, UsageTotal
from shared.config import load_client_registry
from shared.names import NAME_PATTERN
from shared.settings import Settings

__all__ = ["parse_since", "register"]

_BY: tuple[UsageBy, ...] = ("client", "model", "day", "provider")
_SINCE = re.compile(r"^(\d+)([dhm])$")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60}
_COLUMNS = ("calls", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd",
            "unpriced_calls")


def parse_since(text: str, now: float | None = None) -> float:
    """``7d``, ``12h``, ``90m`` (that long ago) or ``YYYY-MM-DD`` (that UTC day's start) as epoch seconds."""
    now = time.time() if now is None else now
    found = _SINCE.match(text.strip())
    if found:
        return now - int(found.group(1)) * _UNIT_S[found.group(2)]
    try:
        return float(calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use a number and d, h or m (7d, 12h, 90m) or a UTC day (2026-12-01)") from None


def _client_name(text: str) -> str:
    if not re.fullmatch(NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a client name (1-32 lowercase letters, digits, '-', '_')")
    return text


def register(sub: Any) -> None:
    parser = sub.add_parser("usage", help="what each client, model or day used and cost (the usage ledger)",
                            description="Sum the usage ledger: calls, errors, tokens and USD per client, model, "
                                        "UTC day or provider, from the gateway's store.")
    parser.add_argument("--client", type=_client_name, metavar="NAME", help="only this client; also shows its "
                        "budgets and what is left of them")
    parser.add_argument("--since", type=parse_since, default=None, metavar="WHEN",
                        help="from this long ago (7d, 12h, 90m) or this UTC day (YYYY-MM-DD) (default: 7d)")
    parser.add_argument("--by", choices=_BY, default="client", help="one row per (default: client)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    form.add_argument("--csv", action="store_true", help="print CSV (a header, then one line per row)")
    add_config_dir(parser)
    add_run_dir(parser)
    parser.set_defaults(handler=reporting(_usage))


def _usage(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    since = args.since if args.since is not None else time.time() - 7 * 86400
    totals, budgets = asyncio.run(_read(settings, since, args.by, args.client))
    if args.json:
        print(orjson.dumps({"since": _iso(since), "by": args.by, "rows": [_row(t) for t in totals],
                            "budgets": budgets}, option=orjson.OPT_INDENT_2).decode())
    elif args.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([args.by, *_COLUMNS])
        for total in totals:
            writer.writerow(_row(total).values())
        sys.stdout.write(out.getvalue())
    else:
        print(_table(totals, args.by, since))
        for budget in budgets:
            print(f"budget {budget['budget']}: {budget['used']:g} used of {budget['limit']:g}, "
                  f"{budget['left']:g} left; resets {budget['resets']}")
    return 0


async def _read(settings: Settings, since: float, by: UsageBy, client: str | None
                ) -> tuple[list[UsageTotal], list[dict[str, Any]]]:
    slot = await open_store(settings)
    if slot.store is None:
        raise CommandRefused(f"cannot read the usage ledger: {slot.problem}")
    try:
        totals = await slot.store.usage_totals(since, by, client)
        budgets = await _budgets(settings, slot.store, client) if client is not None else []
    finally:
        await slot.close()
    return totals, budgets


async def _budgets(settings: Settings, store: Store, client: str) -> list[dict[str, Any]]:
    """Each budget of ``client`` in the registry, with what the ledger says is used of it."""
    entry = load_client_registry(settings.registry_file).clients.get(client) if settings.registry_file.exists() \
        else None
    if entry is None or entry.budget is None:
        return []
    now = time.time()
    spent = next((s for s in await store.spent(now) if s.kind == "client" and s.name == client),
                 SpentRow("client", client, 0.0, 0, 0.0, 0))
    day_end, month_end = _next_day(now), _next_month(now)
    rows = []
    for name, limit, used, resets in (("usd_per_day", entry.budget.usd_per_day, spent.usd_day, day_end),
                                      ("usd_per_month", entry.budget.usd_per_month, spent.usd_month, month_end),
                                      ("tokens_per_day", entry.budget.tokens_per_day, spent.tokens_day, day_end)):
        if limit is not None:
            rows.append({"budget": name, "limit": limit, "used": used, "left": max(limit - used, 0), "resets": resets})
    return rows


def _next_day(now: float) -> str:
    return _iso((now // 86400 + 1) * 86400)


def _next_month(now: float) -> str:
    year, month = time.gmtime(now)[:2]
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}-01T00:00:00Z"


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _row(total: UsageTotal) -> dict[str, Any]:
    return {"key": total.key, "calls": total.calls, "errors": total.errors, "input_tokens": total.input_tokens,
            "cached_input_tokens": total.cached_input_tokens, "output_tokens": total.output_tokens,
            "reasoning_tokens": total.reasoning_tokens, "cost_usd": round(total.cost, 12),
            "unpriced_calls": total.unpriced_calls}


def _table(totals: list[UsageTotal], by: str, since: float) -> str:
    if not totals:
        return f"no calls in the ledger since {_iso(since)}"
    header = [by, "calls", "errors", "input", "cached", "output", "reasoning", "cost USD", "unpriced"]
    lines = [[t.key or "-", str(t.calls), str(t.errors), str(t.input_tokens), str(t.cached_input_tokens),
              str(t.output_tokens), str(t.reasoning_tokens), f"{t.cost:.6f}", str(t.unpriced_calls)] for t in totals]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
            for row in [header, *lines]]
    footer = f"since {_iso(since)}; cost counts priced calls only" + (
        " (unpriced calls used tokens at an unknown price)" if any(t.unpriced_calls for t in totals) else "")
    return "\n".join([*text, footer])
