"""Entry point of the ``llm-caller`` command: one subcommand module per concern."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from shared.config import ConfigError

# One module per concern, each exposing register(subparsers).
_COMMAND_MODULES = ("stack_cmd", "clients_cmd", "config_cmd", "assistant_cmd", "security_cmd", "stdio_cmd")


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
    parser = argparse.ArgumentParser(prog="llm-caller", description="Local MCP gateway to many LLM providers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
