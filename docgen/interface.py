"""Generates ``docs/interface.md``, the reference of what MCP clients see, from the code,
and the error tables in README.md and runbook/errors.md (``docgen.error_tables``).

    python -m docgen           # print docs/interface.md
    python -m docgen --write   # rewrite docs/interface.md and the error tables
    python -m docgen --check   # exit 1 if any of them is stale

Tools come from ``gateway.tool_table.TOOL_LIST`` (what ``tools/list`` answers), limits
from ``gateway.tool_schemas``, errors from ``shared.errors``: the hierarchy from its
module docstring, each type's meaning and retryability from its ``ErrorPolicy``; provider
kinds from their declarations (``workers.providers.registry``).
``tests/unit/docgen/test_interface.py`` and ``tests/unit/docgen/test_error_tables.py`` fail when a
committed file and the generator differ, so the references cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from docgen import error_tables
from gateway import chat_inputs, tool_schemas
from gateway.app import MCP_PATH
from gateway.compose import error_result
from gateway.tool_table import TOOL_LIST
from shared import errors
from shared.kind_spec import KindSpec
from shared.settings import Settings
from shared.tool_names import EMBED
from workers.providers.registry import KINDS

__all__ = ["DOC_PATH", "generate", "main"]

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "interface.md"

# What each key of LLMCallerError.to_payload() means. generate() refuses to run if the
# payload gains or loses a key, so this table is forced to follow the code.
_ERROR_FIELDS = {
    "type": "one of the types below; decide what to do from this and `retryable` alone",
    "message": "for the person reading the client's output; never a traceback, key or token",
    "retryable": "`true` if sending the same call again later may succeed",
    "retry_after_s": "seconds to wait before retrying, when the provider or a limit said; else `null`",
    "provider": "the provider behind the failure, when one was involved; else `null`",
    "request_id": "the gateway's id for the call (also in the logs), when it got that far; else `null`",
    "partial_text": "only on `stream_interrupted`: the text already sent as progress before the break",
    "raw_text": "only on `invalid_output`: the model's reply as it came (never the prompt)",
    "validation_error": "only on `invalid_output`: the most relevant mismatch, `path` (a JSON Pointer into the "
                        "reply; empty for the reply as a whole) and `message`",
}

_TREE_LINE = re.compile(r"^\s*[│├└─\s]*(?P<cls>[A-Z]\w+)\s+(?P<type>[a-z_]+)$")


def _default_port() -> int:
    port = next(f.default for f in fields(Settings) if f.name == "port")
    assert isinstance(port, int)
    return port


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=100)


def _json_block(data: Any) -> list[str]:
    return ["```json", json.dumps(data, indent=2, ensure_ascii=False), "```"]


def _tool_sections() -> Iterator[str]:
    yield "## Tools"
    yield ""
    yield "| tool | read-only | open world | input | output |"
    yield "|---|---|---|---|---|"
    for tool in TOOL_LIST:
        hints = tool.annotations
        read_only = "yes" if hints and hints.read_only_hint else "no"
        open_world = "yes" if hints and hints.open_world_hint else "no"
        yield (f"| [`{tool.name}`](#{tool.name.lower()}) | {read_only} | {open_world} "
               f"| {', '.join(f'`{p}`' for p in tool.input_schema.get('properties', {})) or '(none)'} "
               f"| {', '.join(f'`{p}`' for p in (tool.output_schema or {}).get('properties', {}))} |")
    for tool in TOOL_LIST:
        yield from ("", f"### {tool.name}", "", _wrap(tool.description or "(no description)"), "")
        yield "Input schema (`inputSchema`):"
        yield ""
        yield from _json_block(tool.input_schema)
        yield ""
        yield "Output schema (`outputSchema`; the `structuredContent` of a successful result):"
        yield ""
        yield from _json_block(tool.output_schema)


def _limit_section() -> Iterator[str]:
    yield from ("", "## Limits", "", "Checked before any provider is called; exceeding one is `invalid_request`.", "")
    yield "| limit | value |"
    yield "|---|---|"
    yield f"| characters of text in one call, all fields together | {tool_schemas.MAX_INPUT_CHARS:,} |"
    yield f"| messages in one `chat` / `chatStream` call | {tool_schemas.MAX_MESSAGES:,} |"
    yield f"| texts in one `embed` call | {tool_schemas.MAX_EMBED_INPUTS:,} |"
    yield f"| content parts in one message | {tool_schemas.MAX_PARTS:,} |"
    yield f"| images in one call | {chat_inputs.MAX_IMAGES:,} |"
    yield f"| bytes of one image (decoded) | {chat_inputs.MAX_IMAGE_BYTES:,} |"
    yield f"| bytes of all images in one call (decoded) | {chat_inputs.MAX_IMAGES_TOTAL_BYTES:,} |"
    yield f"| image types (checked against the bytes) | {', '.join(chat_inputs.IMAGE_TYPES)} |"
    yield f"| `tools` in one call | {chat_inputs.MAX_TOOLS:,} |"
    yield f"| `stop` sequences | {chat_inputs.MAX_STOP:,} |"


def _docstring_tree() -> list[str]:
    """The hierarchy drawn in shared/errors.py's docstring; refused if it misses a type."""
    doc = errors.__doc__ or ""
    start = doc.rindex("\n", 0, doc.index("LLMCallerError\n")) + 1
    tree = textwrap.dedent(doc[start:].split("\n\n")[0]).splitlines()
    drawn = {m["type"] for line in tree if (m := _TREE_LINE.match(line))}
    missing = sorted(set(errors.ERROR_TYPES) - drawn)
    if missing:
        raise RuntimeError(f"shared/errors.py's docstring tree lacks {', '.join(missing)}")
    return [line.rstrip() for line in tree]


def _category(cls: type[errors.LLMCallerError]) -> str:
    if issubclass(cls, errors.ClientError):
        return "client"
    if issubclass(cls, errors.TransientError):
        return "transient"
    return "internal"


def _error_rows() -> Iterator[str]:
    for type_name in errors.ERROR_TYPES:
        cls = type(errors.error_from_payload({"type": type_name}))
        if cls.type != type_name:
            raise RuntimeError(f"error type {type_name!r} does not round-trip through error_from_payload")
        retryable = "yes" if cls.policy.retryable else "no"
        yield f"| `{type_name}` | `{cls.__name__}` | {_category(cls)} | {retryable} | {cls.policy.summary} |"


def _error_section() -> Iterator[str]:
    sample = {**errors.StreamInterrupted("example", partial_text="...").to_payload(),
              **errors.InvalidOutput("example", raw_text="...", validation_error={"path": "", "message": "."}
                                     ).to_payload()}
    if set(sample) != set(_ERROR_FIELDS):
        raise RuntimeError(f"the error payload keys changed ({sorted(sample)}); describe them in docgen/interface.py")
    tree = _docstring_tree()
    yield from ("", "## Errors", "", "### Shape", "")
    yield _wrap("A failed call is a tool result with `isError: true`: its text says `type: message` (and "
                "whether it is retryable), its `structuredContent` is one `error` object. For example, `embed` "
                "asked of a provider without embeddings answers:")
    yield ""
    no_embed = next(name for name, spec in KINDS.items() if EMBED not in spec.capabilities)
    example = errors.Unsupported(f"embed is not supported by {no_embed}", provider=no_embed)
    yield from _json_block(error_result(example).model_dump(mode="json", by_alias=True, exclude_none=True))
    yield from ("", "| field | meaning |", "|---|---|")
    yield from (f"| `{key}` | {meaning} |" for key, meaning in _ERROR_FIELDS.items())
    yield from ("", "### Types", "")
    yield _wrap("Client errors will fail again if sent unchanged; transient errors may succeed later (respect "
                "`retry_after_s`). `internal` is a bug in LLM Caller; its details are only in the gateway log.")
    yield from ("", "| type | class | category | retryable | meaning |", "|---|---|---|---|---|")
    yield from _error_rows()
    yield from ("", "### Hierarchy", "", "```text", *tree, "```")


def _kind_section() -> Iterator[str]:
    """The provider kinds, straight from their declarations (``workers/providers/<kind>/kind.py``)."""
    yield from ("", "## Provider kinds", "")
    yield _wrap("What each `kind` in providers.json can do and needs, from its declaration in "
                "`workers/providers/<kind>/kind.py`; a model's capabilities are limited to its kind's.")
    yield from ("", "| kind | capabilities | key | default `base_url` | the worker appends | models | `options` |",
                "|---|---|---|---|---|---|---|")
    for name, spec in KINDS.items():
        key = f"required, in `{spec.key_header}`" if spec.needs_key else f"optional, in `{spec.key_header}`"
        base = "version path included" if spec.base_url_style == "version" else "server root"
        models = ("discovered from the server (`discover_models`, `discovery_interval_s`)" if spec.discovers_models
                  else "listed in providers.json")
        yield (f"| `{name}` ({spec.title}) | {', '.join(f'`{c}`' for c in sorted(spec.capabilities))} | {key} "
               f"| `{spec.default_base_url}` ({base}) | {spec.joins} | {models} | {_options_cell(spec)} |")


def _options_cell(spec: KindSpec) -> str:
    """A kind's own settings with their defaults, and where older files kept them."""
    settings = [f"`{option.name}` (default `{option.default}`)" for option in spec.options]
    moved = [f"was top-level `{old}`" for old, _ in spec.moved_options]
    return "; ".join(settings + moved) or "none"


def generate() -> str:
    header = [
        "<!-- GENERATED by `python -m docgen --write` from gateway/tool_table.py,",
        "     gateway/tool_schemas.py and shared/errors.py. Do not edit by hand:",
        "     tests/unit/docgen/test_interface.py fails when this file is stale. -->",
        "",
        "# Interface reference",
        "",
        _wrap(f"What MCP clients see at `http://127.0.0.1:{_default_port()}{MCP_PATH}` (streamable HTTP; every "
              "request needs `Authorization: Bearer <client token>`): the tools with their exact JSON Schemas, "
              "the input limits, and the error shape with every error type."),
        "",
    ]
    body = [*_tool_sections(), *_limit_section(), *_error_section(), *_kind_section()]
    return "\n".join(header + body) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docgen",
                                     description="Generate docs/interface.md and the error tables.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite {DOC_PATH.name} and the error tables")
    group.add_argument("--check", action="store_true", help="exit 1 if any of them is stale")
    args = parser.parse_args(argv)
    text = generate()
    if args.write:
        DOC_PATH.write_text(text)
        print(f"wrote {DOC_PATH}")
        for relative in error_tables.stale(write=True):
            print(f"wrote the error tables in {relative}")
        return 0
    if args.check:
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        stale = ([DOC_PATH.name] if current != text else []) + error_tables.stale()
        for name in stale:
            print(f"{name} is stale; run: python -m docgen --write", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(text)
    return 0

