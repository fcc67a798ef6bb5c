"""``llm-caller threads list | delete``: the operator's view of the clients' conversation threads.

Opens the gateway's store as the settings say (``gateway.store.open_store``: the SQLite
file in the state folder by default, or ``LLMC_STORE_URL``), directly: the gateway need
not run. Shows each thread's size, age, models and expiry, never its messages.
Without ``--client``, ``list`` covers every client in the registry and the local one
(calls no HTTP authentication vouched for); ``delete`` needs the owner.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from cli.options import CommandRefused, add_config_dir, reporting, resolve_settings
from shared.config import ConfigError, load_client_registry
from shared.settings import Settings
from shared.tool_names import THREADS

if TYPE_CHECKING:  # the gateway's modules load only when a threads command runs, not for every command
    from gateway.store.base import Store
    from gateway.threads_tool import ThreadOut

__all__ = ["register"]

# The owner of threads made by calls no HTTP authentication vouched for (gateway.threads.LOCAL_CLIENT).
_LOCAL = "local"


async def _with_store(settings: Settings, work: Any) -> Any:
    from gateway.store import open_store

    slot = await open_store(settings)
    if slot.store is None:
        raise CommandRefused(f"cannot open the gateway's store: {slot.problem}")
    try:
        return await work(slot.store)
    finally:
        await slot.close()


def _owners(settings: Settings, client: str | None) -> list[str]:
    if client is not None:
        return [client]
    try:
        names = sorted(load_client_registry(settings.registry_file).clients)
    except ConfigError:
        names = []  # no registry (yet): only the local client's threads
    return [*names, _LOCAL]


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def _print_table(rows: list[tuple[str, ThreadOut]]) -> None:
    table = [("CLIENT", "THREAD", "TURNS", "TOKENS", "DROPPED", "MODELS", "CREATED", "UPDATED", "EXPIRES")]
    for owner, t in rows:
        table.append((owner, t.thread_id, str(t.turns), str(t.tokens), str(t.dropped_turns), ",".join(t.models),
                      _when(t.created_at), _when(t.updated_at), _when(t.expires_at)))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@reporting
def _list(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    owners = _owners(settings, args.client)
    from gateway.threads_tool import thread_summaries

    async def work(store: Store) -> list[tuple[str, ThreadOut]]:
        now = time.time()
        return [(owner, t) for owner in owners for t in await thread_summaries(store, owner, now)]

    rows: list[tuple[str, ThreadOut]] = asyncio.run(_with_store(settings, work))
    if args.json:
        data = [{"client": owner, **t.model_dump(mode="json")} for owner, t in rows]
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif not rows:
        print("no threads" + (f" for client {args.client}" if args.client else ""))
    else:
        _print_table(rows)
    return 0


@reporting
def _delete(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)

    async def work(store: Store) -> bool:
        return await store.delete_thread(args.thread_id, args.client)

    if not asyncio.run(_with_store(settings, work)):
        raise CommandRefused(f"client {args.client} has no thread {args.thread_id}; "
                             "`llm-caller threads list` shows the threads there are")
    print(f"deleted thread {args.thread_id} of client {args.client}")
    return 0


def register(sub: Any) -> None:
    # Named after the tool whose listing it gives the operator (for every client).
    threads = sub.add_parser(THREADS, help="list or delete the clients' conversation threads",
                             description="List or delete conversation threads in the gateway's store "
                                         "(never their messages).")
    actions = threads.add_subparsers(dest="threads_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show threads: size, age, models, expiry")
    listing.add_argument("--client", metavar="NAME", default=None,
                         help=f"only this client's threads (default: every registered client and {_LOCAL})")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    add_config_dir(listing)
    listing.set_defaults(handler=_list)
    delete = actions.add_parser("delete", help="delete one thread with its turns and images")
    delete.add_argument("thread_id", metavar="THREAD_ID")
    delete.add_argument("--client", metavar="NAME", required=True, help="the client the thread belongs to")
    add_config_dir(delete)
    delete.set_defaults(handler=_delete)
