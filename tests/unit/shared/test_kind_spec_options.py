"""A kind's own settings live in its declaration (``KindSpec.options``), and the discovery keys
apply where the declaration says the kind discovers models (``KindSpec.discovers_models``).

Config validation, config warnings and the published JSON schema all read the declarations,
so the shared provider model carries no kind's own field and no kind's name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from cli.config_warnings import config_warnings
from shared.config import ConfigError, KindOptions, ProviderConfig, json_schemas, load_providers, options_model
from workers.config_record import ProviderRecord
from workers.providers.anthropic.kind import API_VERSION
from workers.providers.registry import KINDS

KEYED = {"secret": {"env": "SOME_KEY"}}


def _file(tmp_path: Path, providers: dict[str, Any]) -> Path:
    file = tmp_path / "providers.json"
    file.write_bytes(orjson.dumps({"providers": providers}))
    return file


def _problems(tmp_path: Path, providers: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_providers(_file(tmp_path, providers))
    return caught.value.problems


def _provider(kind: str, **extra: Any) -> dict[str, Any]:
    spec = KINDS[kind]
    return {"kind": kind, "base_url": spec.default_base_url, **(KEYED if spec.needs_key else {}), **extra}


def test_options_load_as_the_kinds_own_typed_model_with_its_defaults(tmp_path: Path) -> None:
    loaded = load_providers(_file(tmp_path, {
        "plain": _provider("anthropic"),
        "dated": _provider("anthropic", options={"api_version": "2024-10-22"}),
        "other": _provider("openai"),
    })).providers
    assert loaded["plain"].option(API_VERSION) == "2023-06-01"
    assert loaded["dated"].option(API_VERSION) == "2024-10-22"
    assert type(loaded["dated"].options) is options_model("anthropic")
    assert type(loaded["other"].options) is options_model("openai")
    assert options_model("openai").model_fields == {} and issubclass(options_model("openai"), KindOptions)
    assert loaded["dated"].model_dump()["options"] == {"api_version": "2024-10-22", "structured_output": "auto"}
    # What a worker reads: the validated entry as a plain record, defaults filled in.
    assert ProviderRecord.from_validated(loaded["plain"].model_dump(mode="json")).option(API_VERSION) == "2023-06-01"
    assert ProviderRecord.from_validated(loaded["dated"].model_dump(mode="json")).option(API_VERSION) == "2024-10-22"


@pytest.mark.parametrize(("provider", "path", "says"), [
    (_provider("anthropic", options={"api_version": "latest"}), "p.options.api_version",
     "(an option of kind 'anthropic'); fix: match the pattern"),
    (_provider("anthropic", options={"beta": "tools"}), "p.options.beta",
     "unknown option for kind 'anthropic' (its options: api_version, structured_output); fix: remove it"),
    (_provider("openai", options={"api_version": "2024-10-22"}), "p.options.api_version",
     "unknown option for kind 'openai' (its options: none)"),
    (_provider("lmstudio", options=["x"]), "p.options", "must be a JSON object (the options of kind 'lmstudio')"),
])
def test_a_bad_option_is_refused_naming_the_kind_and_the_field(
        tmp_path: Path, provider: dict[str, Any], path: str, says: str) -> None:
    problems = _problems(tmp_path, {"p": provider})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"providers.{path}: ") and says in problems[0], problems[0]


def test_the_old_top_level_key_still_loads_and_a_warning_says_where_it_moved(tmp_path: Path) -> None:
    config = load_providers(_file(tmp_path, {"old": _provider("anthropic", anthropic_version="2024-01-01")}))
    old = config.providers["old"]
    assert old.option(API_VERSION) == "2024-01-01"
    assert old.moved_keys == (("anthropic_version", "api_version"),)
    moved = [w for w in config_warnings(config, {"SOME_KEY": "k"}) if "anthropic_version" in w]
    assert moved == ['providers.old.anthropic_version: this setting moved to providers.old.options.api_version '
                     '(read from the old place for now); fix: write it as "options": {"api_version": ...} and '
                     'remove anthropic_version']


def test_the_old_key_and_its_new_place_together_are_refused(tmp_path: Path) -> None:
    twice = _provider("anthropic", anthropic_version="2024-01-01", options={"api_version": "2023-06-01"})
    assert _problems(tmp_path, {"p": twice}) == [
        "providers.p.anthropic_version: is given twice, here and as options.api_version; "
        "fix: keep only options.api_version"]


def test_an_old_key_of_another_kind_is_an_unknown_key(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"p": _provider("openai", anthropic_version="2024-01-01")})
    assert len(problems) == 1 and problems[0].startswith("providers.p.anthropic_version: unknown key"), problems


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("key", "value"), [("discover_models", False), ("discovery_interval_s", 5.0)])
def test_discovery_keys_apply_where_the_declaration_says_the_kind_discovers(
        tmp_path: Path, kind: str, key: str, value: Any) -> None:
    providers = {"p": _provider(kind, **{key: value})}
    if KINDS[kind].discovers_models:
        assert getattr(load_providers(_file(tmp_path, providers)).providers["p"], key) == value
        return
    problems = _problems(tmp_path, providers)
    assert len(problems) == 1 and problems[0].startswith(f"providers.p.{key}: applies only to kinds that "
                                                         "discover their models"), problems
    assert "fix: remove it, and list this provider's models under models" in problems[0]


def test_discovery_follows_the_declaration_not_the_kinds_name(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _provider("openai", discover_models=False)
    with pytest.raises(ValueError, match="applies only to kinds that discover"):
        ProviderConfig.model_validate(data, strict=True)
    monkeypatch.setitem(KINDS, "openai", dataclasses.replace(KINDS["openai"], discovers_models=True))
    assert ProviderConfig.model_validate(data, strict=True).discover_models is False


def _schema_errors(providers: dict[str, Any]) -> list[str]:
    schema = json_schemas()["providers.schema.json"]
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors({"providers": providers})]


def test_the_json_schema_reads_each_kinds_options_and_discovery_from_its_declaration() -> None:
    assert _schema_errors({"a": _provider("anthropic", options={"api_version": "2024-10-22"}),
                           "b": _provider("anthropic", anthropic_version="2024-10-22"),
                           "c": _provider("lmstudio", discover_models=False, discovery_interval_s=5)}) == []
    refused = {
        "options of another kind": _provider("openai", options={"api_version": "2024-10-22"}),
        "an unknown option": _provider("anthropic", options={"beta": "x"}),
        "a malformed option": _provider("anthropic", options={"api_version": "latest"}),
        "discovery on a listing kind": _provider("anthropic", discover_models=True),
        "another kind's old key": _provider("openai", anthropic_version="2024-10-22"),
    }
    for why, provider in refused.items():
        assert _schema_errors({"p": provider}), why
