"""Run-time data files ship inside the packages, and the checkout has one copy of each."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from cli.stack import CODE_ROOT, SUPERVISORD_CONF, scrubbed_environment
from shared.settings import Settings

_SETUPTOOLS = tomllib.loads((CODE_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
# The top-level packages the wheel ships ([tool.setuptools.packages.find] include = ["cli*", ...]).
_PACKAGES = tuple(pattern.rstrip("*") for pattern in _SETUPTOOLS["packages"]["find"]["include"])


def _package_data() -> dict[str, list[str]]:
    data: dict[str, list[str]] = _SETUPTOOLS.get("package-data", {})
    return data


def test_every_top_level_package_ships() -> None:
    """A package folder in the checkout but not in the wheel would break an installed `llm-caller`."""
    # Checkout-only: the tests, the benchmark, UAT and the docs generators.
    local = {p.parent.name for p in CODE_ROOT.glob("*/__init__.py")} - {"tests", "bench", "uat", "docgen"}
    assert sorted(local - set(_PACKAGES)) == []


def _declared(path: Path, package_data: dict[str, list[str]]) -> bool:
    """Whether ``path`` (a file inside a package folder) matches a package-data pattern of its package."""
    for package, patterns in package_data.items():
        folder = CODE_ROOT.joinpath(*package.split("."))
        if folder in path.parents:
            relative = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
                return True
    return False


def test_supervisord_conf_ships_in_the_package_and_the_root_copy_is_a_link_to_it() -> None:
    packaged = CODE_ROOT / "cli" / "supervisord.conf"
    assert SUPERVISORD_CONF.resolve() == packaged.resolve()
    assert packaged.is_file() and not packaged.is_symlink()
    # One source of truth: the checkout's root file (the runbook's `supervisorctl -c supervisord.conf`)
    # is a link to the packaged one, so the two cannot drift.
    root = CODE_ROOT / "supervisord.conf"
    assert root.is_symlink() and root.resolve() == packaged.resolve()
    assert _declared(packaged, _package_data())


def test_every_data_file_inside_the_packages_is_declared_package_data() -> None:
    """A data file added to a package but not to package-data would be missing from the wheel."""
    package_data = _package_data()
    undeclared = [
        path.relative_to(CODE_ROOT).as_posix()
        for package in _PACKAGES
        for path in sorted((CODE_ROOT / package).rglob("*"))
        if path.is_file() and path.suffix not in (".py", ".pyc", ".pyi") and "__pycache__" not in path.parts
        and not _declared(path, package_data)
    ]
    assert undeclared == []


def test_children_start_in_the_folder_holding_the_imported_packages(tmp_path: Path) -> None:
    """supervisord's programs run in LLMC_CODE_ROOT (the checkout or site-packages), not beside the conf file."""
    env = scrubbed_environment(Settings(config_dir=tmp_path, run_dir=tmp_path / "run", log_dir=tmp_path / "logs"), {})
    assert env["LLMC_CODE_ROOT"] == str(CODE_ROOT)
    assert "directory=%(ENV_LLMC_CODE_ROOT)s" in SUPERVISORD_CONF.read_text(encoding="utf-8")
