"""``python -m emulators``: serve the provider emulators until SIGTERM or SIGINT.

    python -m emulators --host 127.0.0.1 --port openai=0 --port anthropic=0 --port lmstudio=0 \\
        --ports-file run/emulators.json --key openai=sk-test --key anthropic=sk-ant-test

A provider without a ``--port`` is not started (``--all`` starts every one on a free port);
port 0 picks a free port. Once every server listens, the actual ports are written to
``--ports-file`` as JSON (``{"openai": N, ...}``), atomically, so a caller can poll for the file.
The providers are those of ``emulators.registry``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from emulators.registry import EMULATORS
from emulators.server import EmulatorConfig, EmulatorRunner, loopback_host, write_ports_file

__all__ = ["main"]


def _pair(text: str) -> tuple[str, str]:
    """``KIND=VALUE`` for a known provider kind; argparse turns the ValueError into a usage error."""
    kind, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(f"expected KIND=VALUE, got {text!r}")
    if kind not in EMULATORS:
        raise argparse.ArgumentTypeError(f"unknown provider {kind!r}; expected one of {', '.join(EMULATORS)}")
    return kind, value


def _port(text: str) -> tuple[str, int]:
    kind, value = _pair(text)
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return kind, port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulators",
        description=f"Serve provider emulators ({', '.join(EMULATORS)}) on loopback until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, action="append", default=[], metavar="KIND=PORT",
                        help="serve KIND's emulator on PORT (0: any free port); repeat per provider")
    parser.add_argument("--all", action="store_true", help="serve every emulator, on a free port unless --port says")
    parser.add_argument("--ports-file", default=None, help="write the actual ports here as JSON once listening")
    parser.add_argument("--key", type=_pair, action="append", default=[], metavar="KIND=KEY",
                        help="the API key KIND's emulator accepts (default: any non-empty key)")
    parser.add_argument("--chunk-delay-s", type=float, default=0.0, help="pause between stream deltas")
    return parser


def _config(args: argparse.Namespace) -> EmulatorConfig:
    ports = dict.fromkeys(EMULATORS, 0) if args.all else {}
    ports.update(dict(args.port))
    return EmulatorConfig(ports=ports, host=args.host, keys=dict(args.key),
                          chunk_delay_s=max(0.0, args.chunk_delay_s))


async def _serve(config: EmulatorConfig, ports_file: str | None) -> None:
    runner = EmulatorRunner(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    ports = await runner.start()
    if ports_file:
        write_ports_file(ports_file, ports)
    await runner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        loopback_host(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    config = _config(args)
    if not config.ports:
        parser.error("nothing to serve: give --port KIND=PORT (e.g. --port openai=0) or --all")
    try:
        EmulatorRunner(config)  # the same checks the real run makes, reported as usage errors
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(config, args.ports_file))
    except OSError as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
