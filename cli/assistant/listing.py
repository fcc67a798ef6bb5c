"""Showing the configured providers: a table for people, JSON for scripts.

A listing shows where each key is *referenced* (a variable name or a file path) and
whether it is there, never the key: enough to spot "OPENAI_API_KEY is not exported".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from workers.providers.registry import KINDS

__all__ = ["print_table", "provider_rows", "render"]


def _key_state(secret: Any) -> str:
    if not isinstance(secret, dict):
        return "none"
    if "env" in secret:
        where = f"env {secret['env']}"
        return f"{where} (set)" if os.environ.get(str(secret["env"]), "").strip() else f"{where} (not set here)"
    path = Path(str(secret.get("file", "")))
    return f"file {path} ({'present' if path.is_file() else 'missing'})"


def _discovers(kind: Any) -> bool:
    """Whether providers of this kind learn their models from the server (``discover_models`` applies)."""
    return kind in KINDS and KINDS[kind].discovers_models


def provider_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One plain dict per provider, in file order; ``defaults`` lists the capabilities routed to it."""
    routes = body.get("defaults", {})
    rows = []
    for name, entry in body.get("providers", {}).items():
        rows.append({
            "name": name,
            "kind": entry.get("kind"),
            "base_url": entry.get("base_url"),
            "priority": entry.get("priority", 100),
            "secret": entry.get("secret"),
            "key": _key_state(entry.get("secret")),
            "models": [{"id": m.get("id"), "capabilities": m.get("capabilities", [])}
                       for m in entry.get("models", []) if isinstance(m, dict)],
            "discover_models": entry.get("discover_models", True) if _discovers(entry.get("kind")) else None,
            "defaults": [cap for cap, target in routes.items() if target.get("provider") == name],
        })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    table = [("NAME", "KIND", "BASE URL", "MODELS", "DEFAULT FOR", "KEY")]
    for row in rows:
        models = ", ".join(m["id"] for m in row["models"]) or ("(discovered)" if row["discover_models"] else "-")
        table.append((row["name"], row["kind"], row["base_url"], models, ",".join(row["defaults"]) or "-",
                      row["key"]))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())


def render(rows: list[dict[str, Any]], *, as_json: bool, file: Path) -> None:
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"no providers in {file}; add one with `llm-caller config providers add NAME --kind KIND --base-url URL`")
    else:
        print_table(rows)
