"""The store's schema as ordered migrations: data in one place, shared by SQLite and PostgreSQL.

Each migration is a version number and its statements. The statements are written once,
with ``{real}``, ``{blob}`` and ``{bigint}`` standing for the column types the two
dialects spell differently; everything else (tables, keys, cascades, indexes) is SQL both
accept. ``llmc_schema`` has one row per applied migration, so the store's version is its
highest row: a backend applies the missing ones in order, in one transaction, and refuses
a store whose version is higher than this code knows (never a silent downgrade).

A new migration is appended here, never edited in place once released.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.store.records import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Dialect", "Migration", "check_version", "pending", "statements"]

Dialect = Literal["sqlite", "postgresql"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"real": "REAL", "blob": "BLOB", "bigint": "INTEGER"},
    "postgresql": {"real": "DOUBLE PRECISION", "blob": "BYTEA", "bigint": "BIGINT"},
}

# The version table itself: created before anything else, in every dialect alike.
VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS llmc_schema ("
                 "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at {real} NOT NULL)")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: applied once, in order, in the same transaction as its version row."""

    version: int
    description: str
    sql: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tasks, task-runner leases, threads, turns and blobs", (
        "CREATE TABLE tasks ("
        " task_id TEXT PRIMARY KEY, client TEXT NOT NULL, tool TEXT NOT NULL, status TEXT NOT NULL,"
        " created_at {real} NOT NULL, updated_at {real} NOT NULL, ttl_ms {bigint},"
        " poll_interval_ms INTEGER NOT NULL, owner TEXT NOT NULL, status_message TEXT,"
        " cancel_requested INTEGER NOT NULL DEFAULT 0, result {blob}, error {blob})",
        "CREATE INDEX tasks_by_owner ON tasks (owner, status)",
        "CREATE INDEX tasks_by_status ON tasks (status)",
        "CREATE TABLE leases (owner TEXT PRIMARY KEY, seen_at {real} NOT NULL)",
        "CREATE TABLE threads ("
        " thread_id TEXT PRIMARY KEY, client TEXT NOT NULL, created_at {real} NOT NULL,"
        " updated_at {real} NOT NULL, expires_at {real}, turns INTEGER NOT NULL DEFAULT 0,"
        " tokens {bigint} NOT NULL DEFAULT 0, dropped_turns INTEGER NOT NULL DEFAULT 0,"
        " next_seq INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX threads_by_client ON threads (client, updated_at)",
        "CREATE INDEX threads_by_expiry ON threads (expires_at)",
        "CREATE TABLE turns ("
        " thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE, seq INTEGER NOT NULL,"
        " messages {blob} NOT NULL, tokens INTEGER NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
        " created_at {real} NOT NULL, PRIMARY KEY (thread_id, seq))",
        "CREATE TABLE blobs ("
        " thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE, digest TEXT NOT NULL,"
        " mime TEXT NOT NULL, data {blob} NOT NULL, PRIMARY KEY (thread_id, digest))",
    )),
    # The usage ledger (#18): one row per call, keyed by its request id so a batch written
    # twice (a retry after a lost answer) adds nothing; ``day`` is the UTC day of ``at``
    # (YYYY-MM-DD), what budgets and retention count by. ``ledger_days`` keeps the per-day,
    # per-client, per-model sums of rows that retention deleted ('' for a missing name).
    Migration(2, "usage ledger and its kept daily summaries", (
        "CREATE TABLE ledger ("
        " request_id TEXT PRIMARY KEY, at {real} NOT NULL, day TEXT NOT NULL, client TEXT NOT NULL,"
        " tool TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, outcome TEXT NOT NULL,"
        " error_type TEXT, latency_ms {real} NOT NULL, input_tokens {bigint}, cached_input_tokens {bigint},"
        " output_tokens {bigint}, reasoning_tokens {bigint}, cost {real}, partial INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX ledger_by_day ON ledger (day, client)",
        "CREATE TABLE ledger_days ("
        " day TEXT NOT NULL, client TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
        " calls {bigint} NOT NULL, errors {bigint} NOT NULL, input_tokens {bigint} NOT NULL,"
        " cached_input_tokens {bigint} NOT NULL, output_tokens {bigint} NOT NULL,"
        " reasoning_tokens {bigint} NOT NULL, cost {real} NOT NULL, unpriced_calls {bigint} NOT NULL,"
        " PRIMARY KEY (day, client, provider, model))",
    )),
    # Budget reservations shared by the gateways of one store (gateway.budgets): a call's
    # estimate per budget until its ledger row lands (deleted in the same transaction), or
    # until it expires (a gateway that died mid-call). ``budget_locks`` rows serialize the
    # reservations on one budget (PostgreSQL row locks; SQLite's write lock does it anyway).
    Migration(3, "budget reservations shared across gateways", (
        "CREATE TABLE budget_holds ("
        " request_id TEXT NOT NULL, budget_key TEXT NOT NULL, unit TEXT NOT NULL, amount {real} NOT NULL,"
        " expires_at {real} NOT NULL, PRIMARY KEY (request_id, budget_key, unit))",
        "CREATE INDEX budget_holds_by_key ON budget_holds (budget_key, unit)",
        "CREATE TABLE budget_locks (budget_key TEXT PRIMARY KEY, uses {bigint} NOT NULL)",
    )),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def statements(sql: str | tuple[str, ...], dialect: Dialect) -> list[str]:
    """The statement(s) with the dialect's column types filled in."""
    items = (sql,) if isinstance(sql, str) else sql
    return [item.format(**_TYPES[dialect]) for item in items]


def pending(current: int) -> list[Migration]:
    """The migrations a store at version ``current`` still needs, in order."""
    return [m for m in MIGRATIONS if m.version > current]


def check_version(found: int, where: str) -> None:
    """Refuse a store written by a newer llm-caller: its schema is not ours to downgrade."""
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"store {where} has schema version {found}, newer than this llm-caller's {SCHEMA_VERSION}: "
            "a newer llm-caller wrote it. Upgrade llm-caller, or point LLMC_STORE_URL at another store; "
            "it is never downgraded")
