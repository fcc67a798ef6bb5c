"""One screen for ``llm-caller status``: supervisord's view of each process plus the
gateway's view of each worker, read from its loopback ``/metrics`` (no token needed).

A process that refused to start (exit 78: the signed manifest check failed) left its
reason in ``RUN_DIR/refusals/PROGRAM.txt``; while that process is not running, the
reason is shown under its line, so the operator sees *why* without reading logs. Under
the worker table, each worker that is not ready gets a line saying why when that is
known (``reasons``: a key `up` could not hand over, from ``cli.config_warnings``).
"""

from __future__ import annotations

import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shared.startup_checks import refusal_file

__all__ = ["read_refusals", "render_status", "worker_health"]

_WHY_LINES = 8
_WHY_WIDTH = 160

_CIRCUIT = {0.0: "closed", 1.0: "half-open", 2.0: "open"}
_WANTED = {
    "llmc_worker_up": "up",
    "llmc_worker_ready": "ready",
    "llmc_worker_heartbeat_age_seconds": "heartbeat_age_s",
    "llmc_worker_inflight": "inflight",
    "llmc_circuit_state": "circuit",
    "llmc_worker_restarts": "restarts",
    "llmc_provider_retries": "retries",
}


def worker_health(metrics_text: str) -> dict[str, dict[str, float]]:
    """Per provider, the worker samples from a Prometheus exposition."""
    workers: dict[str, dict[str, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(metrics_text):
        key = _WANTED.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            workers[sample.labels.get("provider", "?")][key] = sample.value
    return dict(workers)


def fetch_metrics(host: str, port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return None


def read_refusals(run_dir: Path, processes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each stopped process's recorded refusal, as lines to show (first lines, cut to width)."""
    found: dict[str, list[str]] = {}
    for proc in processes:
        if proc["statename"] in ("RUNNING", "STARTING"):
            continue  # a refusal file can only be stale while the process runs
        try:
            # A worker records its refusal under its provider name (program worker-NAME).
            text = refusal_file(run_dir, str(proc["name"]).removeprefix("worker-")).read_text(errors="replace")
        except OSError:
            continue
        lines = [line[:_WHY_WIDTH] for line in text.splitlines() if line.strip()]
        more = len(lines) - _WHY_LINES
        found[proc["name"]] = lines[:_WHY_LINES] + ([f"... and {more} more lines"] if more > 0 else [])
    return found


def render_status(processes: list[dict[str, Any]], metrics_text: str | None,
                  refusals: dict[str, list[str]] | None = None, *,
                  reasons: dict[str, str] | None = None) -> list[str]:
    """The status screen; ``reasons`` says, per provider, why its worker has no key (shown when not ready)."""
    lines = ["process                state      detail"]
    for proc in processes:
        name = f"{proc['group']}:{proc['name']}" if proc["group"] != proc["name"] else proc["name"]
        lines.append(f"{name:<22} {proc['statename']:<10} {proc['description']}")
        for index, why in enumerate((refusals or {}).get(proc["name"], ())):
            lines.append(f"  {'why:' if index == 0 else '    '} {why}")
    lines.append("")
    if metrics_text is None:
        lines.append("gateway: not answering on /metrics; worker health unknown")
        return lines
    lines.append("worker      link  ready  heartbeat  in-flight  circuit    restarts  retries")
    for provider, data in sorted(worker_health(metrics_text).items()):
        age = data.get("heartbeat_age_s")
        lines.append(
            f"{provider:<11} {'up' if data.get('up') else 'DOWN':<5} {'yes' if data.get('ready') else 'no':<6} "
            f"{f'{age:.1f}s' if age is not None else '-':<10} {int(data.get('inflight', 0)):<10} "
            f"{_CIRCUIT.get(data.get('circuit', 0.0), '?'):<10} {int(data.get('restarts', 0)):<9} "
            f"{int(data.get('retries', 0))}"
        )
    lines.extend(_why_not_ready(worker_health(metrics_text), reasons or {}))
    return lines


def _why_not_ready(workers: dict[str, dict[str, float]], reasons: dict[str, str]) -> list[str]:
    lines = []
    for provider, data in sorted(workers.items()):
        if data.get("ready"):
            continue
        if provider in reasons:
            lines.append(f"{provider}: unconfigured: {reasons[provider]}")
        elif data.get("up"):
            lines.append(f"{provider}: not ready; `getHealth` shows its status and last_error")
    return ["", *lines] if lines else []
