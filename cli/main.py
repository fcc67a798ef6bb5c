"""Entry point of the ``llm-caller`` command: one subcommand module per concern."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from shared.config import ConfigError
from shared.version import VERSION

# One module per concern, each exposing register(subparsers).
_COMMAND_MODULES = ("stack_cmd", "clients_cmd", "config_cmd", "assistant_cmd", "security_cmd", "stdio_cmd", "try_cmd",
                    "threads_cmd", "usage_cmd")


def _modules() -> list[ModuleType]:
    modules = []
    for name in _COMMAND_MODULES:
        try:
            modules.append(importlib.import_module(f"cli.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"cli.{name}":
                raise  # a real missing dependency must not be hidden
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-caller", description="Local MCP gateway to many LLM providers.",
                                     epilog="Run `llm-caller COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"llm-caller {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _modules():
        module.register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand a description (its one-line help if it has none), written as a sentence."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                text = (child.description or str(helps.get(name) or "")).strip()
                if text:
                    child.description = text[0].upper() + text[1:] + ("" if text[-1] in ".)" else ".")
                _describe(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `llm-caller` alone: the overview of every command
        parser.print_help()
        return 0
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"llm-caller: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`llm-caller clients list | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
