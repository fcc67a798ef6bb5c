"""``python -m emulators``: serve the provider emulators until SIGTERM or SIGINT.

    python -m emulators --host 127.0.0.1 --openai-port 0 --anthropic-port 0 --lmstudio-port 0 \\
        --ports-file run/emulators.json --openai-key sk-test --anthropic-key sk-ant-test

A provider whose ``--*-port`` is omitted is not started; port 0 picks a free port. Once
every server listens, the actual ports are written to ``--ports-file`` as JSON
(``{"openai": N, ...}``), atomically, so a caller can poll for the file.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from emulators.server import PROVIDERS, EmulatorConfig, EmulatorRunner, loopback_host, write_ports_file

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulators",
        description="Serve the OpenAI, Anthropic and LM Studio emulators on loopback until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    for provider in PROVIDERS:
        parser.add_argument(f"--{provider}-port", type=int, default=None, metavar="PORT",
                            help=f"serve the {provider} emulator on PORT (0: any free port)")
    parser.add_argument("--ports-file", default=None, help="write the actual ports here as JSON once listening")
    for provider, name in (("openai", "OpenAI"), ("anthropic", "Anthropic")):
        parser.add_argument(f"--{provider}-key", default=None,
                            help=f"the API key the {name} emulator accepts (default: any non-empty key)")
    parser.add_argument("--chunk-delay-s", type=float, default=0.0, help="pause between stream deltas")
    return parser


def _config(args: argparse.Namespace) -> EmulatorConfig:
    ports = {p: getattr(args, f"{p}_port") for p in PROVIDERS if getattr(args, f"{p}_port") is not None}
    return EmulatorConfig(
        ports=ports, host=args.host, openai_key=args.openai_key, anthropic_key=args.anthropic_key,
        chunk_delay_s=max(0.0, args.chunk_delay_s),
    )


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
        parser.error("nothing to serve: give at least one of --openai-port, --anthropic-port, --lmstudio-port")
    try:
        asyncio.run(_serve(config, args.ports_file))
    except OSError as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
