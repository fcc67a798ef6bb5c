"""A broken config stops start-up with one clear message; nothing starts half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from cli.stack import REPO_ROOT

pytestmark = pytest.mark.integration

GOOD_PROVIDER = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "secret": {"env": "K"}}


def _config(folder: Path, providers: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "providers.json").write_bytes(orjson.dumps(providers))
    (folder / "client-registry.json").write_bytes(b'{"clients": {}}')
    return folder


def _up(config_dir: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli.main", "up", "--detach", "--config-dir", str(config_dir),
               "--run-dir", str(run_dir), "--port", "9"]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


@pytest.mark.parametrize(("providers", "path", "fix"), [
    ({"providers": {"openai": {**GOOD_PROVIDER, "api_key": "sk-x"}}}, "providers.openai.api_key",
     "provider keys never go in config files"),
    ({"providers": {"openai": {**GOOD_PROVIDER, "max_concurrency": "lots"}}}, "providers.openai.max_concurrency",
     "integer"),
    ({"providers": {"openai": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}}}, "providers.openai",
     '"secret"'),
    ({"provider": {}}, "provider", "remove this key"),
])
def test_up_refuses_broken_providers_file(tmp_path: Path, providers: object, path: str, fix: str) -> None:
    config_dir = _config(tmp_path / "c", providers)
    result = _up(config_dir, Path("/tmp") / f"llmc-t{os.getpid()}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(config_dir / "providers.json") in result.stderr
    assert path in result.stderr and fix in result.stderr
    assert "Traceback" not in result.stderr
    assert not (Path("/tmp") / f"llmc-t{os.getpid()}" / "supervisord.pid").exists()


def test_up_refuses_missing_registry(tmp_path: Path) -> None:
    config_dir = _config(tmp_path / "c", {"providers": {"openai": GOOD_PROVIDER}})
    (config_dir / "client-registry.json").unlink()
    result = _up(config_dir, tmp_path / "r")
    assert result.returncode == 2
    assert "client-registry.json" in result.stderr and "not found" in result.stderr


def test_gateway_alone_exits_2_on_broken_config(tmp_path: Path) -> None:
    config_dir = _config(tmp_path / "c", {"providers": {"x": {"kind": "openai"}}})
    env = {"PATH": os.environ["PATH"], "LLMC_CONFIG_DIR": str(config_dir), "LLMC_RUN_DIR": str(tmp_path / "r")}
    result = subprocess.run([sys.executable, "-m", "gateway"], capture_output=True, text=True, env=env,
                            cwd=REPO_ROOT, timeout=30)
    assert result.returncode == 2
    assert "providers.x.base_url" in result.stderr and "Traceback" not in result.stderr
