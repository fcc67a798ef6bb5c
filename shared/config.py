"""Configuration files: their models, their JSON Schemas and how they are loaded.

Two files live in the config folder:

* ``providers.json``: each provider's kind, base URL, secret *reference* (never the
  secret), models with capabilities, timeouts; plus the default route per capability.
* ``client-registry.json``: MCP clients, their token *hashes* and what each may call.

Both are strict: an unknown key, a wrong type or a missing reference stops start-up with
one message naming the file, the path inside it and the fix (``ConfigError``). A config
that loads is complete; nothing starts half-configured.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.models import CAPABILITIES, Capability

__all__ = [
    "PROVIDER_KINDS",
    "TOOLS",
    "ClientEntry",
    "ClientRegistry",
    "ConfigError",
    "ModelConfig",
    "ProviderConfig",
    "ProvidersFile",
    "RouteTarget",
    "SecretRef",
    "Timeouts",
    "load_client_registry",
    "load_providers",
]

ProviderKind = Literal["openai", "anthropic", "lmstudio"]
PROVIDER_KINDS: tuple[str, ...] = ("openai", "anthropic", "lmstudio")
TOOLS: tuple[str, ...] = ("chat", "chatStream", "embed", "getHealth")
# Kinds that cannot work without a key; LM Studio runs locally without one.
_KINDS_NEEDING_SECRET = {"openai", "anthropic"}
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. ``str()`` is the operator message."""

    def __init__(self, file: Path, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {file}:\n{lines}")


class SecretRef(_Strict):
    """Where a worker finds its provider key: an environment variable or a 0600 file."""

    env: Annotated[str | None, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of "env" (a variable name) or "file" (a path to a 0600 file)')
        return self


class Timeouts(_Strict):
    connect_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    read_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    total_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class ModelConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    capabilities: Annotated[list[Capability], Field(min_length=1)]


class ProviderConfig(_Strict):
    kind: ProviderKind
    base_url: Annotated[str, Field(min_length=1)]
    secret: SecretRef | None = None
    models: list[ModelConfig] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    # Anthropic only: the API version header value.
    anthropic_version: str = "2023-06-01"
    # LM Studio only: learn models from the server's own listing.
    discover_models: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_when_needed(self) -> ProviderConfig:
        if self.kind in _KINDS_NEEDING_SECRET and self.secret is None:
            raise ValueError(
                f'a {self.kind} provider needs "secret": {{"env": "VAR_NAME"}} or {{"file": "/path/to/key"}}'
            )
        return self

    def models_for(self, capability: Capability) -> list[str]:
        return [m.id for m in self.models if capability in m.capabilities]


class RouteTarget(_Strict):
    provider: str
    model: str | None = None


class ProvidersFile(_Strict):
    providers: dict[Annotated[str, Field(pattern=_NAME)], ProviderConfig]
    # The route used when a call names neither a provider nor a known model.
    defaults: dict[Capability, RouteTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _defaults_exist(self) -> ProvidersFile:
        for capability, target in self.defaults.items():
            if target.provider not in self.providers:
                raise ValueError(
                    f"defaults.{capability} names provider {target.provider!r}, which is not in "
                    f"providers (known: {', '.join(sorted(self.providers)) or 'none'})"
                )
        return self


class ClientEntry(_Strict):
    # SHA-256 of the token. Tokens are 256-bit random strings, so a fast hash is safe:
    # there is nothing to brute-force, unlike a human password.
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    tools: list[Literal["*", "chat", "chatStream", "embed", "getHealth"]] = Field(default_factory=lambda: ["*"])
    providers: list[str] = Field(default_factory=lambda: ["*"])
    disabled: bool = False
    expires_at: Annotated[int | None, Field(description="Unix time after which the token is refused")] = None
    created_at: int | None = None

    def may_call(self, tool: str) -> bool:
        return "*" in self.tools or tool in self.tools

    def may_use(self, provider: str) -> bool:
        return "*" in self.providers or provider in self.providers


class ClientRegistry(_Strict):
    clients: dict[Annotated[str, Field(pattern=_NAME)], ClientEntry] = Field(default_factory=dict)


_FIXES = {
    "extra_forbidden": "remove this key (check its spelling; provider keys never go in config files, "
    'use "secret": {"env": ...} or {"file": ...})',
    "missing": "add this key",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "use lowercase letters, digits, '-' or '_' (names) or the documented format",
}


def _describe(err: Any) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    fix = _FIXES.get(err["type"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}" + (f"; fix: {fix}" if fix else "")


def _read_json(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, ["file not found; fix: create it (llm-caller init writes a starter)"]) from None
    except OSError as exc:
        raise ConfigError(file, [f"cannot read file ({exc.strerror}); fix: check its permissions"]) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(file, [f"not valid JSON ({exc}); fix: correct the syntax"]) from None


def _load(model: type[_Strict], file: Path) -> Any:
    data = _read_json(file)
    if isinstance(data, dict):
        data.pop("$schema", None)  # editors' schema hint, not configuration
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, [_describe(e) for e in exc.errors(include_url=False)]) from None


def load_providers(file: Path) -> ProvidersFile:
    result: ProvidersFile = _load(ProvidersFile, file)
    return result


def load_client_registry(file: Path) -> ClientRegistry:
    result: ClientRegistry = _load(ClientRegistry, file)
    return result


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas published in config/schema/, generated so they cannot drift."""
    return {
        "providers.schema.json": ProvidersFile.model_json_schema(),
        "client-registry.schema.json": ClientRegistry.model_json_schema(),
    }


def capability_names() -> tuple[str, ...]:
    return CAPABILITIES
