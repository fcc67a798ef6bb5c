"""What a change does to a config file, as lines an operator can check before saying yes.

Files are flattened to dotted paths (``providers.openai.base_url``); model lists are
keyed by model id rather than position, so adding one model shows one line instead of
every later model "changing". Secret references and token hashes are shown only as
``[secret]``: a summary is printed to a terminal and may be pasted into a ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["MASK", "Entry", "changed_paths", "summarize"]

MASK = "[secret]"
# Subtrees shown masked and compared as one value.
_MASKED_KEYS = frozenset({"secret", "token_sha256"})
_MAX_VALUE = 80

Entry = tuple[str, str]  # (sign, path): "+" added, "-" removed, "~" changed


def _by_id(items: list[Any]) -> dict[str, Any] | None:
    """A list of objects with unique string ids, as a mapping; None for any other list."""
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    if not items or not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        return None
    return {str(item["id"]): item for item in items}


def _flatten(value: Any, path: str, out: dict[str, tuple[bool, Any]]) -> None:
    key = path.rsplit(".", 1)[-1]
    if key in _MASKED_KEYS and value is not None:
        out[path] = (True, value)
        return
    if isinstance(value, dict) and (value or not path):  # an empty file has no settings, not one empty one
        for name, item in value.items():
            _flatten(item, f"{path}.{name}" if path else str(name), out)
        return
    keyed = _by_id(value) if isinstance(value, list) else None
    if keyed is not None:
        for model_id, item in keyed.items():
            rest = {k: v for k, v in item.items() if k != "id"}
            _flatten(rest or True, f"{path}[{model_id}]", out)
        return
    out[path] = (False, value)


def _flat(data: dict[str, Any] | None) -> dict[str, tuple[bool, Any]]:
    out: dict[str, tuple[bool, Any]] = {}
    body = {k: v for k, v in (data or {}).items() if k != "$schema"}  # an editor hint, not configuration
    _flatten(body, "", out)
    return out


def _iso(value: int | float) -> str:
    """A Unix time as ISO 8601 in UTC, e.g. 2026-12-07T18:30:00Z."""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show(leaf: tuple[bool, Any], path: str = "") -> str:
    masked, value = leaf
    is_time = path.endswith("_at") and isinstance(value, int | float) and not isinstance(value, bool)
    if is_time:
        return _iso(value)
    if masked:
        # The reference's kind (env or file) helps and tells nothing about the key itself.
        return f"{MASK} ({next(iter(value))})" if isinstance(value, dict) and len(value) == 1 else MASK
    text = orjson.dumps(value).decode()
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def changed_paths(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Entry]:
    old, new = _flat(before), _flat(after)
    entries: list[Entry] = []
    for path, leaf in new.items():
        if path not in old:
            entries.append(("+", path))
        elif old[path][1] != leaf[1]:
            entries.append(("~", path))
    entries.extend(("-", path) for path in old if path not in new)
    return entries


def summarize(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """One line per added (+), changed (~) or removed (-) setting; empty when nothing changes."""
    old, new = _flat(before), _flat(after)
    lines = []
    for sign, path in changed_paths(before, after):
        if sign == "+":
            lines.append(f"+ {path}: {_show(new[path], path)}")
        elif sign == "~":
            lines.append(f"~ {path}: {_show(old[path], path)} -> {_show(new[path], path)}")
        else:
            lines.append(f"- {path}: {_show(old[path], path)}")
    return lines
