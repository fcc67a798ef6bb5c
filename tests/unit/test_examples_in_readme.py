"""The README shows each client example verbatim, so a reader who copies it gets the file that runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOWN = re.compile(r"^#### `(examples/[\w.]+)`\n\n```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_every_example_is_shown_verbatim_in_the_readme() -> None:
    shown = dict(SHOWN.findall((ROOT / "README.md").read_text()))
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.py"))
    assert sorted(shown) == files, "README must show each file in examples/ under its own heading"
    for name, code in shown.items():
        assert code == (ROOT / name).read_text(), f"README's copy of {name} differs from the file"
