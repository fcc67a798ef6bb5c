"""Entry point of the ``llm-caller`` command: one subcommand module per concern."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from shared.config import ConfigError


def _modules() -> list[ModuleType]:
    # Imported here so `llm-caller --help` stays fast and a broken optional module
    # cannot stop the others from loading.
    from cli import clients_cmd, config_cmd, stack_cmd

    return [stack_cmd, clients_cmd, config_cmd]


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
    return code


if __name__ == "__main__":
    sys.exit(main())
