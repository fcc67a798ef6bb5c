"""The worker's secrets provider: env, hand-off file, 0600 files; never logs names or values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.config import SecretRef
from workers.secrets import resolve_secret


def test_env_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-env-value-123")
    assert resolve_secret("openai", SecretRef(env="MY_PROVIDER_KEY"), tmp_path) == "sk-env-value-123"


def test_handoff_file_used_when_env_is_scrubbed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MY_PROVIDER_KEY", raising=False)
    handoff = tmp_path / "openai"
    handoff.write_text("sk-handed-over-456\n")
    handoff.chmod(0o600)
    assert resolve_secret("openai", SecretRef(env="MY_PROVIDER_KEY"), tmp_path) == "sk-handed-over-456"


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-file-value-789")
    key.chmod(0o644)
    assert resolve_secret("openai", SecretRef(file=str(key)), tmp_path) is None
    key.chmod(0o600)
    assert resolve_secret("openai", SecretRef(file=str(key)), tmp_path) == "sk-file-value-789"


def test_missing_secret_log_names_neither_variable_nor_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("VERY_SPECIFIC_VAR_NAME", raising=False)
    with caplog.at_level(logging.DEBUG):
        assert resolve_secret("openai", SecretRef(env="VERY_SPECIFIC_VAR_NAME"), tmp_path) is None
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "provider_key_missing" in text
    assert "VERY_SPECIFIC_VAR_NAME" not in text and str(tmp_path) not in text
