# ruff: noqa: S608  (f-strings here splice in only this module's constant column lists and conditions;
# every value is a bound parameter)
"""Every ``Store`` method as SQL, written once for SQLite and PostgreSQL.

An operation is a generator: it yields ``Query`` objects and receives each one's
``Result``, and returns the method's value. It does no I/O itself, so the SQLite backend
drives it synchronously in its database thread and the PostgreSQL backend drives it with
an async connection; each runs one operation as one transaction. The SQL uses ``:name``
parameters (SQLite's spelling; ``pg_params`` rewrites them for psycopg) and only syntax
both dialects accept.

Changing statements carry the expected state in their ``WHERE`` (``status = 'working'``,
``next_seq = :seq``), and the row count says whether they applied: on PostgreSQL the row
lock makes a second gateway's identical update wait and then match nothing; on SQLite the
write transaction is exclusive.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.store.records import (
    BudgetCheck,
    LedgerRow,
    SpentRow,
    TaskRow,
    TaskStatus,
    ThreadRow,
    TurnRow,
    UsageBy,
    UsageTotal,
)

__all__ = ["Op", "Query", "Result", "pg_params"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and its parameters; with ``many``, the statement once per parameter set
    (``executemany``: one prepared statement, far cheaper than one long multi-row VALUES)."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    many: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    rowcount: int
    rows: Sequence[Sequence[Any]]


# An operation: yields queries, is sent their results, returns the method's value.
Op = Generator[Query, Result, T]

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def pg_params(sql: str) -> str:
    """``:name`` parameters in psycopg's ``%(name)s`` spelling."""
    return _PARAM.sub(r"%(\1)s", sql)


_TASK_COLS = ("task_id, client, tool, status, created_at, updated_at, ttl_ms, poll_interval_ms, owner, "
              "status_message, cancel_requested, result, error")
_THREAD_COLS = "thread_id, client, created_at, updated_at, expires_at, turns, tokens, dropped_turns, next_seq"
_TURN_COLS = "seq, messages, tokens, provider, model, created_at"
# A task is live until created_at + ttl_ms (as TaskRow.expired computes it); a thread until expires_at.
_TASK_LIVE = "(ttl_ms IS NULL OR :now * 1000 < created_at * 1000 + ttl_ms)"
_THREAD_LIVE = "(expires_at IS NULL OR :now < expires_at)"


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _task(row: Sequence[Any]) -> TaskRow:
    return TaskRow(
        task_id=row[0], client=row[1], tool=row[2], status=TaskStatus(row[3]), created_at=float(row[4]),
        updated_at=float(row[5]), ttl_ms=None if row[6] is None else int(row[6]), poll_interval_ms=int(row[7]),
        owner=row[8], status_message=row[9], cancel_requested=bool(row[10]), result=_bytes(row[11]),
        error=_bytes(row[12]))


def _thread(row: Sequence[Any]) -> ThreadRow:
    return ThreadRow(
        thread_id=row[0], client=row[1], created_at=float(row[2]), updated_at=float(row[3]),
        expires_at=None if row[4] is None else float(row[4]), turns=int(row[5]), tokens=int(row[6]),
        dropped_turns=int(row[7]), next_seq=int(row[8]))


def _turn(row: Sequence[Any]) -> TurnRow:
    return TurnRow(seq=int(row[0]), messages=bytes(row[1]), tokens=int(row[2]), provider=row[3], model=row[4],
                   created_at=float(row[5]))


# ---- tasks ---------------------------------------------------------------------------
def create_task(row: TaskRow) -> Op[None]:
    yield Query(
        f"INSERT INTO tasks ({_TASK_COLS}) VALUES (:task_id, :client, :tool, :status, :created_at, :updated_at,"
        " :ttl_ms, :poll_interval_ms, :owner, :status_message, :cancel_requested, :result, :error)",
        {"task_id": row.task_id, "client": row.client, "tool": row.tool, "status": row.status.value,
         "created_at": float(row.created_at), "updated_at": float(row.updated_at), "ttl_ms": row.ttl_ms,
         "poll_interval_ms": row.poll_interval_ms, "owner": row.owner, "status_message": row.status_message,
         "cancel_requested": int(row.cancel_requested), "result": row.result, "error": row.error})


def get_task(task_id: str, client: str, now: float) -> Op[TaskRow | None]:
    found = yield Query(f"SELECT {_TASK_COLS} FROM tasks WHERE task_id = :task_id AND client = :client"
                        f" AND {_TASK_LIVE}", {"task_id": task_id, "client": client, "now": float(now)})
    return _task(found.rows[0]) if found.rows else None


def set_task_progress(task_id: str, status_message: str, now: float) -> Op[bool]:
    done = yield Query("UPDATE tasks SET status_message = :message, updated_at = :now"
                       " WHERE task_id = :task_id AND status = 'working'",
                       {"message": status_message, "now": float(now), "task_id": task_id})
    return done.rowcount == 1


def finish_task(task_id: str, status: TaskStatus, now: float, status_message: str | None,
                result: bytes | None, error: bytes | None) -> Op[bool]:
    done = yield Query(
        "UPDATE tasks SET status = :status, updated_at = :now, result = :result, error = :error,"
        " status_message = COALESCE(:message, status_message) WHERE task_id = :task_id AND status = 'working'",
        {"status": status.value, "now": float(now), "result": result, "error": error, "message": status_message,
         "task_id": task_id})
    return done.rowcount == 1


def request_cancel(task_id: str, client: str, now: float) -> Op[TaskRow | None]:
    keys = {"task_id": task_id, "client": client, "now": float(now)}
    yield Query("UPDATE tasks SET cancel_requested = 1, updated_at = :now WHERE task_id = :task_id"
                f" AND client = :client AND status = 'working' AND cancel_requested = 0 AND {_TASK_LIVE}", keys)
    return (yield from get_task(task_id, client, now))


def cancels_for(owner: str) -> Op[list[str]]:
    found = yield Query("SELECT task_id FROM tasks WHERE owner = :owner AND status = 'working'"
                        " AND cancel_requested = 1 ORDER BY created_at", {"owner": owner})
    return [row[0] for row in found.rows]


def beat(owner: str, now: float) -> Op[None]:
    yield Query("INSERT INTO leases (owner, seen_at) VALUES (:owner, :now)"
                " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at", {"owner": owner, "now": float(now)})


def fail_orphans(now: float, lease_s: float, error: bytes, status_message: str) -> Op[int]:
    done = yield Query(
        "UPDATE tasks SET status = 'failed', updated_at = :now, error = :error, status_message = :message"
        " WHERE status = 'working' AND NOT EXISTS (SELECT 1 FROM leases"
        " WHERE leases.owner = tasks.owner AND :now - leases.seen_at <= :lease_s)",
        {"now": float(now), "error": error, "message": status_message, "lease_s": float(lease_s)})
    return done.rowcount


def purge(now: float) -> Op[int]:
    keys = {"now": float(now)}
    dead = f"SELECT thread_id FROM threads WHERE NOT {_THREAD_LIVE}"
    turns = yield Query(f"SELECT COUNT(*) FROM turns WHERE thread_id IN ({dead})", keys)
    blobs = yield Query(f"SELECT COUNT(*) FROM blobs WHERE thread_id IN ({dead})", keys)
    threads = yield Query(f"DELETE FROM threads WHERE NOT {_THREAD_LIVE}", keys)  # turns, blobs cascade
    tasks = yield Query(f"DELETE FROM tasks WHERE NOT {_TASK_LIVE}", keys)
    return int(turns.rows[0][0]) + int(blobs.rows[0][0]) + threads.rowcount + tasks.rowcount


# ---- threads -------------------------------------------------------------------------
def create_thread(row: ThreadRow) -> Op[None]:
    yield Query(
        f"INSERT INTO threads ({_THREAD_COLS}) VALUES (:thread_id, :client, :created_at, :updated_at,"
        " :expires_at, :turns, :tokens, :dropped_turns, :next_seq)",
        {"thread_id": row.thread_id, "client": row.client, "created_at": float(row.created_at),
         "updated_at": float(row.updated_at), "expires_at": row.expires_at, "turns": row.turns,
         "tokens": row.tokens, "dropped_turns": row.dropped_turns, "next_seq": row.next_seq})


def get_thread(thread_id: str, client: str, now: float) -> Op[tuple[ThreadRow, list[TurnRow]] | None]:
    found = yield Query(f"SELECT {_THREAD_COLS} FROM threads WHERE thread_id = :thread_id AND client = :client"
                        f" AND {_THREAD_LIVE}", {"thread_id": thread_id, "client": client, "now": float(now)})
    if not found.rows:
        return None
    turns = yield Query(f"SELECT {_TURN_COLS} FROM turns WHERE thread_id = :thread_id ORDER BY seq",
                        {"thread_id": thread_id})
    return _thread(found.rows[0]), [_turn(row) for row in turns.rows]


def append_turn(thread_id: str, client: str, turn: TurnRow, now: float, expires_at: float | None,
                drop_before_seq: int | None) -> Op[bool]:
    keys = {"thread_id": thread_id, "client": client, "seq": turn.seq, "now": float(now)}
    # The claim: only the caller that saw next_seq == turn.seq moves it on (the row is locked from here).
    claimed = yield Query(f"UPDATE threads SET next_seq = :seq + 1 WHERE thread_id = :thread_id AND client = :client"
                          f" AND next_seq = :seq AND {_THREAD_LIVE}", keys)
    if claimed.rowcount != 1:
        return False
    dropped = 0
    if drop_before_seq is not None:
        gone = yield Query("DELETE FROM turns WHERE thread_id = :thread_id AND seq < :before",
                           {"thread_id": thread_id, "before": drop_before_seq})
        dropped = gone.rowcount
    yield Query(f"INSERT INTO turns (thread_id, {_TURN_COLS}) VALUES (:thread_id, :seq, :messages, :tokens,"
                " :provider, :model, :created_at)",
                {"thread_id": thread_id, "seq": turn.seq, "messages": turn.messages, "tokens": turn.tokens,
                 "provider": turn.provider, "model": turn.model, "created_at": float(turn.created_at)})
    yield Query(
        "UPDATE threads SET turns = (SELECT COUNT(*) FROM turns WHERE thread_id = :thread_id),"
        " tokens = (SELECT COALESCE(SUM(tokens), 0) FROM turns WHERE thread_id = :thread_id),"
        " dropped_turns = dropped_turns + :dropped, updated_at = :now, expires_at = :expires_at"
        " WHERE thread_id = :thread_id",
        {"thread_id": thread_id, "dropped": dropped, "now": float(now), "expires_at": expires_at})
    return True


def list_threads(client: str, now: float) -> Op[list[ThreadRow]]:
    found = yield Query(f"SELECT {_THREAD_COLS} FROM threads WHERE client = :client AND {_THREAD_LIVE}"
                        " ORDER BY updated_at DESC", {"client": client, "now": float(now)})
    return [_thread(row) for row in found.rows]


def delete_thread(thread_id: str, client: str) -> Op[bool]:
    done = yield Query("DELETE FROM threads WHERE thread_id = :thread_id AND client = :client",
                       {"thread_id": thread_id, "client": client})
    return done.rowcount == 1


def put_blob(thread_id: str, digest: str, mime: str, data: bytes) -> Op[None]:
    # Kept once per content digest; a blob of a thread that is gone is not kept.
    yield Query("INSERT INTO blobs (thread_id, digest, mime, data) SELECT :thread_id, :digest, :mime, :data"
                " WHERE EXISTS (SELECT 1 FROM threads WHERE thread_id = :thread_id)"
                " ON CONFLICT (thread_id, digest) DO NOTHING",
                {"thread_id": thread_id, "digest": digest, "mime": mime, "data": data})


def get_blob(thread_id: str, digest: str) -> Op[tuple[str, bytes] | None]:
    found = yield Query("SELECT mime, data FROM blobs WHERE thread_id = :thread_id AND digest = :digest",
                        {"thread_id": thread_id, "digest": digest})
    return (found.rows[0][0], bytes(found.rows[0][1])) if found.rows else None


# ---- the usage ledger ------------------------------------------------------------------
_LEDGER_COLS = ("request_id", "at", "day", "client", "tool", "provider", "model", "outcome", "error_type",
                "latency_ms", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost",
                "partial")
_SUM_COLS = ("calls", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost",
             "unpriced_calls")
# One ledger row as the summary columns (what ``ledger_days`` keeps of it), named as them.
_ROW_EXPRS = ("1", "CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END", "COALESCE(input_tokens, 0)",
              "COALESCE(cached_input_tokens, 0)", "COALESCE(output_tokens, 0)", "COALESCE(reasoning_tokens, 0)",
              "COALESCE(cost, 0)",
              "CASE WHEN cost IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL) THEN 1 ELSE 0 END")
_ROW_SUMS = ", ".join(f"{expr} AS {name}" for expr, name in zip(_ROW_EXPRS, _SUM_COLS, strict=True))
_GROUP_KEYS: dict[str, str] = {"client": "client", "model": "provider || '/' || model", "day": "day",
                               "provider": "provider"}


def utc_day(at: float) -> str:
    """The UTC day of ``at`` as YYYY-MM-DD (how the ledger and budgets count days)."""
    return time.strftime("%Y-%m-%d", time.gmtime(at))


_INSERT_LEDGER = (f"INSERT INTO ledger ({', '.join(_LEDGER_COLS)}) VALUES ({', '.join(':' + c for c in _LEDGER_COLS)})"
                  " ON CONFLICT (request_id) DO NOTHING")


def _ledger_params(row: LedgerRow) -> dict[str, Any]:
    values = (row.request_id, float(row.at), utc_day(row.at), row.client or "", row.tool, row.provider or "",
              row.model or "", row.outcome, row.error_type, float(row.latency_ms), row.input_tokens,
              row.cached_input_tokens, row.output_tokens, row.reasoning_tokens, row.cost, int(row.partial))
    return dict(zip(_LEDGER_COLS, values, strict=True))


def record_usage(rows: Sequence[LedgerRow]) -> Op[int]:
    """Insert ``rows`` (a request id already present is kept as it is); how many were new."""
    if not rows:
        return 0
    done = yield Query(_INSERT_LEDGER, many=[_ledger_params(row) for row in rows])
    # The rows' budget reservations end in the same transaction: never counted twice, never missing.
    yield Query("DELETE FROM budget_holds WHERE request_id = :request_id",
                many=[{"request_id": row.request_id} for row in rows])
    return max(done.rowcount, 0)


_SPENT_EXPR = {"usd": "COALESCE(cost, 0)", "tokens": "COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)"}
_DAYS_EXPR = {"usd": "cost", "tokens": "input_tokens + output_tokens"}


def hold_budget(request_id: str, checks: Sequence[BudgetCheck], now: float,
                expires_at: float) -> Op[tuple[str, float] | None]:
    """Reserve ``amount`` on every check if each budget's spent + held is below its limit.

    Returns None when held, else (budget_key, spent + held) of the first full one (nothing held).
    A request's earlier holds (a route it moved on from) are replaced.
    """
    yield Query("DELETE FROM budget_holds WHERE request_id = :request_id OR expires_at <= :now",
                {"request_id": request_id, "now": float(now)})
    for key in sorted({check.budget_key for check in checks}):  # one order everywhere: no deadlock
        yield Query("INSERT INTO budget_locks (budget_key, uses) VALUES (:key, 1)"
                    " ON CONFLICT (budget_key) DO UPDATE SET uses = budget_locks.uses + 1", {"key": key})
    for check in checks:
        who = "client" if check.kind == "client" else "provider"
        keys = {"name": check.name, "first": check.first_day, "last": check.last_day, "key": check.budget_key,
                "unit": check.unit, "now": float(now)}
        found = yield Query(
            f"SELECT (SELECT COALESCE(SUM({_SPENT_EXPR[check.unit]}), 0) FROM ledger WHERE {who} = :name"
            " AND day >= :first AND day <= :last)"
            f" + (SELECT COALESCE(SUM({_DAYS_EXPR[check.unit]}), 0) FROM ledger_days WHERE {who} = :name"
            " AND day >= :first AND day <= :last)"
            " + (SELECT COALESCE(SUM(amount), 0) FROM budget_holds WHERE budget_key = :key AND unit = :unit"
            " AND expires_at > :now)", keys)
        used = float(found.rows[0][0] or 0)
        if used >= check.limit:
            return check.budget_key, used
    yield Query("INSERT INTO budget_holds (request_id, budget_key, unit, amount, expires_at)"
                " VALUES (:request_id, :key, :unit, :amount, :expires_at)",
                many=[{"request_id": request_id, "key": c.budget_key, "unit": c.unit, "amount": float(c.amount),
                       "expires_at": float(expires_at)} for c in checks])
    return None


def usage_totals(since: float, by: UsageBy, client: str | None) -> Op[list[UsageTotal]]:
    """Sums per ``by`` of the calls that ended at or after ``since`` (kept summaries: by their day)."""
    key = _GROUP_KEYS[by]
    who = " AND client = :client" if client is not None else ""
    keys = {"since": float(since), "since_day": utc_day(since), "client": client or ""}
    sums = ", ".join(f"SUM({name})" for name in _SUM_COLS)
    names = ", ".join(_SUM_COLS)
    found = yield Query(
        f"SELECT k, {sums} FROM ("
        f" SELECT {key} AS k, {_ROW_SUMS} FROM ledger WHERE at >= :since{who}"
        f" UNION ALL SELECT {key} AS k, {names} FROM ledger_days WHERE day >= :since_day{who}"
        ") AS usage_rows GROUP BY k ORDER BY k", keys)
    return [UsageTotal(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), float(r[7]),
                       int(r[8])) for r in found.rows]


def spent(now: float) -> Op[list[SpentRow]]:
    """Each client's and each provider's USD and tokens since the UTC day and the UTC month of ``now`` began."""
    day = utc_day(now)
    keys = {"day": day, "month": day[:8] + "01"}
    rows: list[SpentRow] = []
    for kind in ("client", "provider"):
        found = yield Query(
            "SELECT name, SUM(CASE WHEN day >= :day THEN cost ELSE 0 END),"
            " SUM(CASE WHEN day >= :day THEN tokens ELSE 0 END), SUM(cost), SUM(tokens) FROM ("
            f" SELECT {kind} AS name, day, COALESCE(cost, 0) AS cost,"
            " COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) AS tokens FROM ledger WHERE day >= :month"
            f" UNION ALL SELECT {kind} AS name, day, cost, input_tokens + output_tokens AS tokens"
            " FROM ledger_days WHERE day >= :month"
            ") AS spent_rows GROUP BY name", keys)
        rows.extend(SpentRow(kind, str(r[0]), float(r[1] or 0), int(r[2] or 0), float(r[3] or 0), int(r[4] or 0))
                    for r in found.rows)
    return rows


def summarise_ledger(before_day: str) -> Op[int]:
    """Fold ledger rows of days before ``before_day`` into ``ledger_days`` and delete them; how many went."""
    names = ", ".join(_SUM_COLS)
    adds = ", ".join(f"{name} = ledger_days.{name} + excluded.{name}" for name in _SUM_COLS)
    keys = {"before": before_day}
    yield Query(
        f"INSERT INTO ledger_days (day, client, provider, model, {names})"
        f" SELECT day, client, provider, model, {', '.join(f'SUM({n})' for n in _SUM_COLS)} FROM ("
        f" SELECT day, client, provider, model, {_ROW_SUMS} FROM ledger"
        " WHERE day < :before) AS old_rows GROUP BY day, client, provider, model"
        f" ON CONFLICT (day, client, provider, model) DO UPDATE SET {adds}", keys)
    gone = yield Query("DELETE FROM ledger WHERE day < :before", keys)
    return gone.rowcount
