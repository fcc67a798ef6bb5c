"""Unit tests mirror the source layout: the tests of ``gateway/router.py`` are in
``tests/unit/gateway/test_router.py``.

The rule, for whoever adds or moves a unit test:

* A test module lives in ``tests/unit/<folder>/`` where ``<folder>`` is the source package
  its main subject is in (``gateway``, ``workers/providers/openai``, ``cli/assistant``, ...).
  A test that touches several packages goes where its main subject is.
* Its name is ``test_<module>.py`` or ``test_<module>_<topic>.py``, where ``<module>`` is a
  module (``<folder>/<module>.py``) or subpackage (``<folder>/<module>/``) of that package:
  ``tests/unit/gateway/test_service.py``, ``tests/unit/shared/test_errors_policy.py``.
* Directly in ``tests/unit/`` are only the checks of the repository as a whole
  (``_REPOSITORY_WIDE`` below) and the shared test helpers (``conftest.py``,
  ``cli_runner.py``, ``link_fakes.py``, ``security_*.py``), which are not test modules.
* Every folder holding test modules has an ``__init__.py`` (several folders hold a
  ``test_adapter.py``; without it their module names would clash).

This test fails, naming the file, when a test module's folder or name points at no
source module (a typo, or a module renamed or removed without its tests).
"""

from __future__ import annotations

from pathlib import Path

from cli.stack import REPO_ROOT

UNIT = REPO_ROOT / "tests" / "unit"
_REPOSITORY_WIDE = {"test_examples_in_readme.py", "test_layering.py", "test_layout.py", "test_packaging.py"}


def _problem(test: Path) -> str | None:
    """Why ``test`` (a test module under tests/unit/) breaks the rule, or None."""
    folder = test.parent.relative_to(UNIT)
    if folder == Path("."):
        return None if test.name in _REPOSITORY_WIDE else "a test of one package belongs in its folder"
    source = REPO_ROOT / folder
    if not (source / "__init__.py").is_file():
        return f"no source package {folder.as_posix()}/"
    if not (test.parent / "__init__.py").is_file():
        return "its folder has no __init__.py"
    name = test.stem.removeprefix("test_")
    modules = {p.stem for p in source.glob("*.py")} | {p.parent.name for p in source.glob("*/__init__.py")}
    if any(name == m or name.startswith(f"{m}_") for m in modules - {"__init__"}):
        return None
    return f"names no module of {folder.as_posix()}/ (test_<module>[_<topic>].py)"


def test_unit_tests_mirror_the_source_layout() -> None:
    tests = sorted(UNIT.rglob("test_*.py"))
    assert len(tests) > 50
    problems = {str(t.relative_to(REPO_ROOT)): _problem(t) for t in tests}
    assert {k: v for k, v in problems.items() if v} == {}
