"""The error tables in README.md and runbook/errors.md, generated from ``shared.errors``.

Each table sits in a marked region of its file::

    <!-- generated:NAME by `python -m docgen --write` from shared/errors.py -->
    ...
    <!-- end generated:NAME -->

``python -m docgen --write`` rewrites what lies between the markers from each error
type's ``ErrorPolicy``; ``tests/unit/docgen/test_error_tables.py`` fails when a committed region
differs, so the hand-written prose around a table stays hand-written and the table
cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from shared import errors

__all__ = ["REGIONS", "ROOT", "error_classes", "render", "stale"]

ROOT = Path(__file__).resolve().parent.parent

_BEGIN = "<!-- generated:{name} by `python -m docgen --write` from shared/errors.py -->"
_END = "<!-- end generated:{name} -->"
_REGION = re.compile(r"^<!-- generated:(?P<name>[a-z-]+) .*?-->\n(?P<body>.*?)^<!-- end generated:(?P=name) -->$",
                     re.MULTILINE | re.DOTALL)


def error_classes() -> list[type[errors.LLMCallerError]]:
    """Every error class, in declaration order (the order of ``ERROR_TYPES``)."""
    return [errors.error_class(name) for name in errors.ERROR_TYPES]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cell(text: str) -> str:
    """Table-safe: a pipe inside a cell would split it."""
    return text.replace("|", "\\|")


def readme_table() -> Iterator[str]:
    """Every type with what each part of the system does with it."""
    yield "| type | retryable | worker retries | counts toward circuit | next route | meaning |"
    yield "|---|---|---|---|---|---|"
    for cls in error_classes():
        p = cls.policy
        yield (f"| `{cls.type}` | {_yes(p.retryable)} | {p.worker_retry.value} | {_yes(p.circuit)} "
               f"| {_yes(p.fallback)} | {_cell(p.summary)} |")


def runbook_table(retryable: bool) -> Callable[[], Iterator[str]]:
    """The runbook's table of client (``retryable=False``) or transient errors."""

    def rows() -> Iterator[str]:
        yield "| type | means | what to do |" if not retryable else "| type | means | what to do when it persists |"
        yield "|---|---|---|"
        for cls in error_classes():
            if cls.policy.retryable == retryable:
                yield f"| `{cls.type}` | {_cell(cls.policy.means)} | {_cell(cls.policy.action)} |"

    return rows


# File (relative to the repository) -> region name -> the lines between its markers.
REGIONS: dict[str, dict[str, Callable[[], Iterator[str]]]] = {
    "README.md": {"errors": readme_table},
    "runbook/errors.md": {"client-errors": runbook_table(False), "transient-errors": runbook_table(True)},
}


def render(text: str, regions: dict[str, Callable[[], Iterator[str]]]) -> str:
    """``text`` with each named region's body regenerated; a missing region is an error."""
    found = {m["name"] for m in _REGION.finditer(text)}
    missing = sorted(set(regions) - found)
    if missing:
        raise RuntimeError(f"no marked region {', '.join(missing)}; add {_BEGIN.format(name=missing[0])} "
                           f"... {_END.format(name=missing[0])}")

    def body(match: re.Match[str]) -> str:
        make = regions.get(match["name"])
        if make is None:
            return match[0]
        return "\n".join([_BEGIN.format(name=match["name"]), *make(), _END.format(name=match["name"])])

    return _REGION.sub(body, text)


def stale(write: bool = False) -> list[str]:
    """The files whose generated regions differ from the code; with ``write``, rewrite them."""
    out = []
    for relative, regions in REGIONS.items():
        path = ROOT / relative
        current = path.read_text(encoding="utf-8")
        wanted = render(current, regions)
        if wanted != current:
            out.append(relative)
            if write:
                path.write_text(wanted, encoding="utf-8")
    return out
