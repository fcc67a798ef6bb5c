"""A worker pays only for what it uses: what it imports, and how it still refuses a broken config.

Structural checks, not RSS thresholds (those are measured by ``python -m bench memory`` and
judged in the bench): a worker started the way supervisord starts it, config loaded and
its adapter built, has no pydantic (providers.json is validated in a forked child,
``workers.config_load``), no MCP SDK or web server, no OpenTelemetry unless asked for, no
httpx, no aiohttp before its first provider request, no gateway or CLI code, and no adapter
of another kind.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from cli.stack import REPO_ROOT
from shared import policies
from shared.config import ModelConfig, ProviderConfig, SecretRef, Timeouts, load_providers
from workers import config_load
from workers.config_load import WorkerConfigError, load_provider
from workers.config_record import (
    CircuitRecord,
    ModelRecord,
    ProviderRecord,
    RateLimitsRecord,
    RetryRecord,
    SecretRecord,
    StreamGuardsRecord,
    TimeoutsRecord,
)
from workers.providers.registry import KINDS

# Packages a worker has no use for; each was measured in the worker or is another process's code.
# aiohttp (~10 MB) and certifi come with the first provider request (workers.http_client).
_HEAVY = ("pydantic", "pydantic_core", "mcp", "starlette", "uvicorn", "opentelemetry", "httpx", "cryptography",
          "gateway", "cli", "aiohttp", "certifi")


def _providers_file(folder: Path) -> Path:
    """A valid providers.json with one provider of every registered kind, named after it."""
    providers = {
        kind: {"kind": kind, "base_url": f"http://127.0.0.1:9/{kind}/",
               "models": [{"id": "m", "capabilities": ["chat"]}],
               **({"secret": {"env": "SOME_KEY"}} if spec.needs_key else {})}
        for kind, spec in KINDS.items()
    }
    file = folder / "providers.json"
    file.write_bytes(orjson.dumps({"providers": providers}))
    return file


def _worker_modules(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMC_", "OTEL_"))}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_worker_loads_no_module_it_does_not_use(kind: str, tmp_path: Path) -> None:
    file = _providers_file(tmp_path)
    others = sorted(f"workers.providers.{k}.adapter" for k in KINDS if k != kind)
    code = f"""
import sys
sys.argv = ["workers", {kind!r}]
import workers.__main__, workers.runtime
from pathlib import Path
from shared import otel
from workers.config_load import load_provider
from workers.providers.adapters import adapter_class
heavy = {_HEAVY!r}
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in {others!r})
print("imported:", loaded())
config = load_provider(Path({str(file)!r}), {kind!r})
assert config is not None and config.kind == {kind!r}
adapter_class(config.kind)
assert otel.configure("worker:{kind}", {{}}) is False
print("running:", loaded())
print("own adapter:", "workers.providers.{kind}.adapter" in sys.modules)
"""
    out = _worker_modules(code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["imported: []", "running: []", "own adapter: True"]


def _fields(cls: Any) -> set[str]:
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return set(cls.model_fields)
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(("model", "record"), [
    (ProviderConfig, ProviderRecord), (SecretRef, SecretRecord), (Timeouts, TimeoutsRecord),
    (ModelConfig, ModelRecord), (policies.RetryPolicy, RetryRecord), (policies.RateLimits, RateLimitsRecord),
    (policies.CircuitPolicy, CircuitRecord), (policies.StreamGuards, StreamGuardsRecord),
])
def test_the_worker_record_has_exactly_the_fields_of_the_config_model(model: type[BaseModel], record: type) -> None:
    assert _fields(record) == _fields(model)


def test_the_worker_gets_the_validated_entry_with_every_default(tmp_path: Path) -> None:
    file = _providers_file(tmp_path)
    record = load_provider(file, "openai")
    expected = load_providers(file).providers["openai"]
    assert record == ProviderRecord.from_validated(expected.model_dump(mode="json"))
    # Validation ran, not just parsing: the base URL was normalised and the defaults filled in.
    assert record is not None and record.base_url == "http://127.0.0.1:9/openai"
    assert record.retry.max_attempts == policies.RetryPolicy().max_attempts
    assert record.models == (ModelRecord(id="m", capabilities=("chat",), priority=100, score=None, features=None,
                                         context_length=None, max_output_tokens=None, price=None),)
    assert load_provider(file, "nobody") is None  # not configured: the worker reports unconfigured


def test_an_invalid_file_is_refused_with_the_config_message(tmp_path: Path) -> None:
    file = tmp_path / "providers.json"
    file.write_bytes(orjson.dumps({"providers": {"openai": {"kind": "openai", "base_url": "ftp://x",
                                                            "secret": {"env": "K"}, "api_key": "sk-x"}}}))
    with pytest.raises(WorkerConfigError) as caught:
        load_provider(file, "openai")
    message = str(caught.value)
    assert message.startswith(f"invalid configuration in {file}:")
    assert "providers.openai.base_url: must be an http:// or https:// URL; fix:" in message
    assert "providers.openai.api_key: unknown key; fix: remove it" in message


def test_a_failure_inside_the_check_is_an_operator_message_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(file: Path, name: str) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(config_load, "_validated_entry", broken)  # the forked child inherits it
    with pytest.raises(WorkerConfigError) as caught:
        load_provider(_providers_file(tmp_path), "openai")
    assert str(caught.value) == (f"checking {tmp_path / 'providers.json'} failed unexpectedly (RuntimeError); "
                                 "fix: run `llm-caller config check` for the details")


def test_a_worker_started_on_a_broken_file_exits_2_naming_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "providers.json").write_bytes(b'{"providers": {"openai": {"kind": "openai", "base_url": 5}}}')
    env = {"PATH": os.environ["PATH"], "LLMC_CONFIG_DIR": str(config), "LLMC_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run([sys.executable, "-m", "workers", "openai"], capture_output=True, text=True, env=env,
                            cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"llm-caller worker openai: invalid configuration in {config / 'providers.json'}")
    problem = "providers.openai.base_url: Input should be a valid string; fix: use a string in double quotes"
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
