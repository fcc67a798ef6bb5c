"""What every command shares: the location options, how they become settings, and how failures are reported.

``resolve_settings`` is the CLI's one way to settings (``Settings.resolve``): an explicit
option, else the LLMC_* variable, else what the running stack recorded in its run folder,
else the XDG default. Only ``up``/``run`` ignore the record: they start a new stack.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from shared.files import FileWriteError
from shared.settings import Settings

__all__ = ["CommandRefused", "Handler", "add_config_dir", "add_run_dir", "reporting", "resolve_settings"]

# argparse destination -> the LLMC_* variable it stands for.
_OPTION_VARS = {"config_dir": "LLMC_CONFIG_DIR", "run_dir": "LLMC_RUN_DIR", "log_dir": "LLMC_LOG_DIR",
                "port": "LLMC_PORT"}
CONFIG_DIR_DEFAULT = "$LLMC_CONFIG_DIR, else the running stack's, else $XDG_CONFIG_HOME/llm-caller"
RUN_DIR_DEFAULT = "$LLMC_RUN_DIR, else $XDG_STATE_HOME/llm-caller/run"

Handler = Callable[[argparse.Namespace], int]


class CommandRefused(Exception):
    """The command cannot do what was asked; ``str()`` says why and how to fix it."""


def add_config_dir(parser: argparse.ArgumentParser) -> None:
    # Default None rather than the resolved folder: Settings.resolve() owns the fallback, so
    # every command and process agrees on where config lives.
    parser.add_argument("--config-dir", type=Path, default=None, metavar="DIR",
                        help=f"folder with providers.json and client-registry.json (default: {CONFIG_DIR_DEFAULT})")


def add_run_dir(parser: argparse.ArgumentParser, what: str = "the running stack's run folder") -> None:
    """--run-dir: where a command finds the running stack (and its record of port, config and logs)."""
    parser.add_argument("--run-dir", type=Path, default=None, metavar="DIR",
                        help=f"{what} (default: {RUN_DIR_DEFAULT})")


def resolve_settings(args: argparse.Namespace, *, remembered: bool = True) -> Settings:
    """The settings for this command: option > LLMC_* variable > the running stack's record > default."""
    options = {var: getattr(args, dest, None) for dest, var in _OPTION_VARS.items()}
    try:
        settings = Settings.resolve({k: v for k, v in options.items() if v is not None}, remembered=remembered)
    except ValueError as exc:
        raise CommandRefused(str(exc)) from None
    if getattr(args, "allow_non_loopback", False):  # only `up` and `run` have the flag
        settings = dataclasses.replace(settings, security=dataclasses.replace(settings.security,
                                                                             allow_non_loopback=True))
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
