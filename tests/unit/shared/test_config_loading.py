"""Every way a config file can be wrong yields one message naming the file, the dotted path and a fix."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.config import ConfigError, load_client_registry, load_providers

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"
SHA = "ab" * 32

Mutation = Callable[[dict[str, Any]], None]


def _providers() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((REPO_CONFIG / "providers.json").read_bytes())
    return data


def _error(tmp_path: Path, data: Any, loader: Callable[[Path], Any] = load_providers) -> tuple[Path, str]:
    file = tmp_path / "config.json"
    file.write_bytes(orjson.dumps(data))
    with pytest.raises(ConfigError) as caught:
        loader(file)
    assert caught.value.file == file
    return file, str(caught.value)


def _assert_explains(message: str, file: Path, path: str) -> None:
    assert str(file) in message, message
    assert f"- {path}: " in message, message
    line = next(line for line in message.splitlines() if f"- {path}: " in line)
    assert "; fix: " in line, message


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


PROVIDER_CASES = [
    pytest.param(_set("extra", 1), "extra", "unknown key", id="unknown-top-level-key"),
    pytest.param(_set("providers.openai.timeouts.connect_ms", 5), "providers.openai.timeouts.connect_ms",
                 "unknown key", id="unknown-nested-key"),
    pytest.param(_set("providers.openai.max_concurrency", "lots"), "providers.openai.max_concurrency",
                 "whole number", id="wrong-type-int"),
    pytest.param(_set("providers.lmstudio.discover_models", "yes"), "providers.lmstudio.discover_models",
                 "true or false", id="wrong-type-bool"),
    pytest.param(_set("providers.openai.kind", "cohere"), "providers.openai.kind", "allowed values",
                 id="unknown-kind"),
    pytest.param(_delete("providers.openai.secret"), "providers.openai.secret", '"secret": {"env"',
                 id="openai-without-secret"),
    pytest.param(_delete("providers.anthropic.secret"), "providers.anthropic.secret", '"secret": {"env"',
                 id="anthropic-without-secret"),
    pytest.param(_set("providers.openai.secret", {"env": "OPENAI_API_KEY", "file": "/run/key"}),
                 "providers.openai.secret", "exactly one", id="secret-with-env-and-file"),
    pytest.param(_set("providers.openai.secret", {}), "providers.openai.secret", '"env"', id="empty-secret"),
    pytest.param(_set("providers.openai.secret", {"env": "lower-case"}), "providers.openai.secret.env",
                 "environment variable name", id="bad-env-name"),
    pytest.param(_set("providers.openai.base_url", "api.openai.com/v1"), "providers.openai.base_url",
                 "https://", id="bad-base-url"),
    pytest.param(_set("defaults.chat.provider", "mistral"), "defaults.chat.provider", "configured provider",
                 id="defaults-unknown-provider"),
    pytest.param(_set("providers.Open AI", {"kind": "lmstudio", "base_url": "http://x"}),
                 "providers.Open AI.[key]", "lowercase", id="bad-provider-name"),
    pytest.param(_set("providers.openai.models", [{"id": "m", "capabilities": []}]),
                 "providers.openai.models.0.capabilities", "at least one", id="empty-capabilities"),
]


@pytest.mark.parametrize(("mutate", "path", "fix_hint"), PROVIDER_CASES)
def test_providers_error_names_file_path_and_fix(
    tmp_path: Path, mutate: Mutation, path: str, fix_hint: str
) -> None:
    data = _providers()
    mutate(data)
    file, message = _error(tmp_path, data)
    _assert_explains(message, file, path)
    assert fix_hint in message


def test_literal_api_key_points_to_a_secret_reference_and_is_not_echoed(tmp_path: Path) -> None:
    data = _providers()
    data["providers"]["openai"]["api_key"] = "sk-live-do-not-print"
    file, message = _error(tmp_path, data)
    _assert_explains(message, file, "providers.openai.api_key")
    assert "never go in config files" in message
    assert '"secret": {"env": "VAR_NAME"} or {"file": "/path/to/key"}' in message
    assert "sk-live-do-not-print" not in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    data = _providers()
    data["providers"]["openai"]["max_concurrency"] = "lots"
    data["providers"]["anthropic"]["timeouts"]["connect_ms"] = 1
    file, message = _error(tmp_path, data)
    _assert_explains(message, file, "providers.openai.max_concurrency")
    _assert_explains(message, file, "providers.anthropic.timeouts.connect_ms")


def test_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "providers.json"
    with pytest.raises(ConfigError) as caught:
        load_providers(file)
    message = str(caught.value)
    assert str(file) in message and "not found" in message and "fix: " in message
    assert "llm-caller init" in message


def test_invalid_json(tmp_path: Path) -> None:
    file = tmp_path / "providers.json"
    file.write_text('{"providers": {,}}')
    with pytest.raises(ConfigError) as caught:
        load_providers(file)
    message = str(caught.value)
    assert str(file) in message and "not valid JSON" in message and "line 1" in message and "fix: " in message


def test_unreadable_path(tmp_path: Path) -> None:
    file = tmp_path / "providers.json"
    file.mkdir()
    with pytest.raises(ConfigError, match="cannot read file"):
        load_providers(file)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    file, message = _error(tmp_path, [1, 2])
    _assert_explains(message, file, "(top level)")


REGISTRY_CASES = [
    pytest.param({"clients": {"Bad Name": {"token_sha256": SHA}}}, "clients.Bad Name.[key]", "lowercase",
                 id="bad-client-name"),
    pytest.param({"clients": {"a": {"token_sha256": "abc"}}}, "clients.a.token_sha256", "SHA-256",
                 id="bad-hash"),
    pytest.param({"clients": {"a": {}}}, "clients.a.token_sha256", "add this key", id="missing-hash"),
    pytest.param({"clients": {"a": {"token_sha256": SHA, "tools": ["complete"]}}}, "clients.a.tools.0",
                 "allowed values", id="unknown-tool"),
    pytest.param({"clients": {"a": {"token_sha256": SHA, "token": "llmc_x"}}}, "clients.a.token",
                 "never go in config files", id="plain-token"),
    pytest.param({"clients": {"a": {"token_sha256": SHA, "disabled": "no"}}}, "clients.a.disabled",
                 "true or false", id="wrong-type"),
    pytest.param({"clients": {}, "version": 2}, "version", "unknown key", id="unknown-top-level-key"),
]


@pytest.mark.parametrize(("data", "path", "fix_hint"), REGISTRY_CASES)
def test_registry_error_names_file_path_and_fix(tmp_path: Path, data: Any, path: str, fix_hint: str) -> None:
    file, message = _error(tmp_path, data, load_client_registry)
    _assert_explains(message, file, path)
    assert fix_hint in message


def test_committed_config_files_load() -> None:
    providers = load_providers(REPO_CONFIG / "providers.json")
    assert set(providers.providers) == {"openai", "anthropic", "lmstudio"}
    assert load_client_registry(REPO_CONFIG / "client-registry.json").clients == {}


def test_schema_hint_is_not_configuration(tmp_path: Path) -> None:
    file = tmp_path / "client-registry.json"
    file.write_bytes(orjson.dumps({"$schema": "./schema/client-registry.schema.json", "clients": {}}))
    assert load_client_registry(file).clients == {}


def test_problems_are_kept_for_logging(tmp_path: Path) -> None:
    data = copy.deepcopy(_providers())
    data["extra"] = 1
    file = tmp_path / "providers.json"
    file.write_bytes(orjson.dumps(data))
    with pytest.raises(ConfigError) as caught:
        load_providers(file)
    assert caught.value.problems and caught.value.problems[0].startswith("extra: ")
