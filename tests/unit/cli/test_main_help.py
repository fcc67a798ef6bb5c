"""Every command's `--help` says what it does, and every option says what it means, one way."""

from __future__ import annotations

import argparse
import re

import pytest

from cli.main import build_parser
from shared.version import VERSION
from tests.unit.cli_runner import run_cli


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*path, name))
    return found


def _parser_for(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


COMMANDS = _commands(build_parser())


def test_the_walk_finds_every_command() -> None:
    assert len(COMMANDS) > 25
    assert ("clients", "add") in COMMANDS and ("config", "providers", "update") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "llm-caller")
def test_help_has_a_description_and_every_option_explains_itself(
        path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, [*path, "--help"])
    assert code == 0
    parser = _parser_for(path)
    assert parser.description and parser.description.strip()[-1] in ".)"
    assert parser.description.split(".")[0] in " ".join(out.split())
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or not action.option_strings:
            continue
        assert action.help, f"{' '.join(path)} {action.option_strings[0]} has no help"
        text = str(action.help)
        assert not re.search(r"\(default [^:]|\(default\)|default is", text), \
            f"{' '.join(path)} {action.option_strings[0]}: write defaults as '(default: X)': {text}"


def test_no_command_prints_the_overview(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, [])
    assert code == 0
    for command in ("up", "down", "status", "clients", "config", "stdio"):
        assert f"\n    {command} " in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, ["--version"])
    assert code == 0 and out.strip() == f"llm-caller {VERSION}"
    assert VERSION[0].isdigit()
