"""One real stack (supervisord, gateway, three workers, emulators) shared by a test module.

Starting it costs a few seconds, so tests share it; a test that breaks a process (kill,
restart) waits for it to come back before returning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from harness.sandbox import Sandbox

T = TypeVar("T")


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.02, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def inject(box: Sandbox, provider: str, *faults: dict[str, Any]) -> None:
    """Queue faults at a provider emulator (see emulators/faults.py)."""
    response = httpx.post(f"{box.emulators.url(provider)}/_emulator/faults", json={"faults": list(faults)})
    response.raise_for_status()


def clear_faults(box: Sandbox) -> None:
    for provider in ("openai", "anthropic", "lmstudio"):
        httpx.delete(f"{box.emulators.url(provider)}/_emulator/faults").raise_for_status()


def process_pid(box: Sandbox, name: str) -> int:
    pid: int = box.stack.rpc().supervisor.getProcessInfo(name)["pid"]
    return pid
