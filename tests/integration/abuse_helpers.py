"""Attack tools for the front-door abuse tests: raw bad-token floods from chosen loopback addresses, the CLI.

The flood speaks HTTP/1.1 on a plain socket (one request per connection, ``Connection:
close``) so that every request can leave from another 127.x.y.z address: Linux routes the
whole of 127.0.0.0/8 to loopback, so a local attacker can bind any of them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox


def rotating_address(index: int) -> str:
    """A different loopback address for each index (127.1.1.1, 127.1.1.2, ...), never .0 or .255."""
    return f"127.{index // 62_500 % 250 + 1}.{index // 250 % 250 + 1}.{index % 250 + 1}"


def bad_token() -> str:
    return "llmc_" + secrets.token_urlsafe(32)


async def _one(port: int, address: str, token: str, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readline(), timeout=30)
        await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1])


async def _flood(port: int, count: int, address: Callable[[int], str], concurrency: int, path: str) -> list[int]:
    statuses = [0] * count
    next_index = iter(range(count))

    async def worker() -> None:
        for index in next_index:
            try:
                statuses[index] = await _one(port, address(index), bad_token(), path)
            except (OSError, TimeoutError, IndexError, ValueError):
                statuses[index] = -1  # refused or cut off: counted apart, never mistaken for a 401/429

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def flood(box: Sandbox, count: int, address: Callable[[int], str] = lambda _: "127.0.0.1", *,
          concurrency: int = 1, path: str = "/session") -> list[int]:
    """``count`` requests with random bad tokens; the status of each, in order of sending."""
    return asyncio.run(_flood(box.stack.settings.port, count, address, concurrency, path))


def tally(statuses: list[int]) -> dict[int, int]:
    return dict(sorted(Counter(statuses).items()))


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``llm-caller ARGS`` from this checkout (the venv's script would import the main checkout)."""
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd or REPO_ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)


def audit_files(box: Sandbox) -> list[Path]:
    return sorted(box.log_dir.glob("audit.jsonl*"))


def audit_bytes(box: Sandbox) -> int:
    return sum(p.stat().st_size for p in audit_files(box) if not p.name.endswith(".lock"))


def audit_since(box: Sandbox, since_iso: str) -> list[dict[str, Any]]:
    """Every audit event at or after ``since_iso``, from the trail and its rotated files."""
    events = []
    for path in audit_files(box):
        if path.name.endswith(".lock"):
            continue
        events += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return sorted((e for e in events if e["ts"] >= since_iso), key=lambda e: e["ts"])
