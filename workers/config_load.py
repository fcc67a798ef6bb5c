"""A worker's providers.json entry: validated in full by a short-lived child, kept as a record.

The validation is ``shared.config``'s, unchanged: a missing file, a syntax error, an
unknown key or a wrong value stops the worker with the same one-line-per-problem
message (naming the file, the key and the fix) that the gateway and ``llm-caller config
check`` give. Only where it runs differs. The worker forks before anything else runs in
it (no thread yet, no event loop, no socket); the child imports pydantic, validates,
writes the result to a pipe as JSON and exits; the worker builds a
``workers.config_record.ProviderRecord`` from it. So the start-up cost is what it was,
and the ~10 MB pydantic and the config models occupy are given back when the child exits
instead of staying resident for the worker's whole life (decision in the log: a second
hand-written validator would drift, a record written by another process would sit
unsigned beside the signed providers.json).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import orjson

from workers.config_record import ProviderRecord

__all__ = ["WorkerConfigError", "load_provider"]


class WorkerConfigError(Exception):
    """providers.json cannot be used; ``str()`` is the operator message."""


def load_provider(file: Path, name: str) -> ProviderRecord | None:
    """Provider ``name``'s validated entry in ``file``, or None when the file has no such provider.

    Raises ``WorkerConfigError`` when the file is missing, unreadable or invalid (anywhere
    in it, not only in this provider's entry: the gateway refuses such a file too).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _validate_in_child(write_end, file, name)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    return _record(file, raw, os.waitstatus_to_exitcode(status))


def _validate_in_child(fd: int, file: Path, name: str) -> NoReturn:
    """The child: validate, answer on ``fd``, and leave without running any of the parent's exit code."""
    code = 0
    try:
        answer = _validated_entry(file, name)
    except BaseException as exc:  # whatever happens here, the parent hears of it and the child exits
        answer, code = {"failed": type(exc).__name__}, 1
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(orjson.dumps(answer))
    finally:
        os._exit(code)


def _validated_entry(file: Path, name: str) -> dict[str, Any]:
    # Imported here, in the child only: the worker itself never loads pydantic.
    from shared.config import ConfigError, load_providers

    try:
        providers = load_providers(file)
    except ConfigError as exc:
        return {"error": str(exc)}
    entry = providers.providers.get(name)
    return {"entry": None if entry is None else entry.model_dump(mode="json")}


def _record(file: Path, raw: bytes, exit_code: int) -> ProviderRecord | None:
    """The child's answer as a record, or the operator message it carried, raised."""
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if exit_code == 0 and isinstance(answer, dict):
        if isinstance(answer.get("error"), str):
            raise WorkerConfigError(answer["error"])
        if "entry" in answer:
            return _built(file, answer["entry"])
    why = answer["failed"] if isinstance(answer, dict) and "failed" in answer else f"exit code {exit_code}"
    raise WorkerConfigError(f"checking {file} failed unexpectedly ({why}); fix: run `llm-caller config check` "
                            "for the details")


def _built(file: Path, entry: Any) -> ProviderRecord | None:
    if entry is None:
        return None
    try:
        return ProviderRecord.from_validated(entry)
    except (TypeError, KeyError) as exc:
        # shared.config gained or lost a field that workers.config_record did not: a bug, not the operator's.
        raise WorkerConfigError(f"{file} validated, but this worker cannot read its entry ({exc}); "
                                "fix: reinstall llm-caller so that all its parts are the same version") from None
