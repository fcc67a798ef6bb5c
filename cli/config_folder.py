"""The operator's config folder as a whole: the starter files, the schemas, and filling in what is missing.

Every command that writes into a config folder (``init``, ``clients add``, the assistant and
the ``config providers`` flag commands) leaves it complete: providers.json,
client-registry.json and schema/ all present and valid. A missing file is written from the
starter; an existing one is never touched here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from shared.config import ProvidersFile, json_schemas
from shared.files import existing_mode, json_bytes, write_bytes_atomic, write_json_atomic
from shared.settings import Settings

__all__ = ["STARTER_PROVIDERS", "STARTER_REGISTRY", "fill_in", "schema_files", "stale_schemas", "starter_files",
           "write_schemas", "write_starter"]

# The starter written by `init`: the same content as the repo's config/providers.json, shipped
# as package data (cli/starter_providers.json) so an installed command (with no repo beside it)
# can still write it. A test keeps the two identical.
STARTER_PROVIDERS: dict[str, Any] = orjson.loads(files("cli").joinpath("starter_providers.json").read_bytes())

STARTER_REGISTRY: dict[str, Any] = {"clients": {}}



def starter_files(settings: Settings) -> dict[Path, tuple[dict[str, Any], int]]:
    """Each config file with its starter content and the mode a new one gets."""
    return {
        settings.providers_file: (STARTER_PROVIDERS, 0o644),
        settings.registry_file: (STARTER_REGISTRY, 0o600),  # same mode `clients add` gives a new registry
    }


def write_starter(path: Path, content: dict[str, Any], mode: int) -> None:
    """Write one starter file, with the $schema hint editors use (a replaced file keeps a .bak)."""
    data = {"$schema": f"./schema/{path.stem}.schema.json", **content}
    write_json_atomic(path, data, mode=existing_mode(path, mode), backup=True)


def fill_in(settings: Settings) -> list[Path]:
    """Write whichever of the folder's files are missing; return what was written. Existing files stay."""
    ProvidersFile.model_validate(STARTER_PROVIDERS)  # a starter that fails its own check is a bug
    folder = settings.config_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "schema" / name for name in write_schemas(folder / "schema")]
    for path, (content, mode) in starter_files(settings).items():
        if not path.exists():
            write_starter(path, content, mode)
            written.append(path)
    return written


def schema_files() -> dict[str, bytes]:
    # Sorted keys: the committed files must not change when pydantic reorders its output.
    return {name: json_bytes(schema, sort_keys=True) for name, schema in json_schemas().items()}


def stale_schemas(folder: Path) -> list[str]:
    stale = []
    for name, content in schema_files().items():
        try:
            current = (folder / name).read_bytes()
        except OSError:
            current = None
        if current != content:
            stale.append(name)
    return stale


def write_schemas(folder: Path) -> list[str]:
    """Write the schemas that differ; return their names (unchanged files keep their mtime)."""
    stale = stale_schemas(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = schema_files()
    for name in stale:
        write_bytes_atomic(folder / name, files[name])
    return stale
