"""What the configuration commands share: the --config-dir option and how failures are reported."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from shared.files import FileWriteError
from shared.settings import Settings

__all__ = ["CommandRefused", "Handler", "add_config_dir", "reporting", "resolve_settings"]

Handler = Callable[[argparse.Namespace], int]


class CommandRefused(Exception):
    """The command cannot do what was asked; ``str()`` says why and how to fix it."""


def add_config_dir(parser: argparse.ArgumentParser) -> None:
    # Default None rather than the resolved folder: Settings.from_env() owns the fallback
    # (LLMC_CONFIG_DIR, then ./config), so every process agrees on where config lives.
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with providers.json and client-registry.json (default: $LLMC_CONFIG_DIR or ./config)",
    )


def resolve_settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    config_dir: Path | None = getattr(args, "config_dir", None)
    if config_dir is not None:
        settings = dataclasses.replace(settings, config_dir=Path(config_dir).absolute())
    return settings


def reporting(handler: Handler) -> Handler:
    """Turn expected failures into one stderr line and an exit code, never a traceback.

    2 means "change something and retry" (like a config error); 1 means the write itself failed.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CommandRefused as exc:
            print(f"llm-caller: {exc}", file=sys.stderr)
            return 2
        except FileWriteError as exc:
            print(f"llm-caller: {exc}", file=sys.stderr)
            return 1

    return run
