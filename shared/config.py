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
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.chat_parts import Feature
from shared.kind_spec import KindOption, KindSpec
from shared.models import CAPABILITIES, Capability
from shared.names import NAME_PATTERN
from shared.policies import (
    CircuitPolicy,
    ClientBudget,
    ClientLimits,
    ProviderBudget,
    RateLimits,
    RetryPolicy,
    StreamGuards,
    StrictModel,
)
from shared.tool_names import ToolGrant

# Kind facts are declarations (workers/providers/<kind>/kind.py, importing only shared/), not worker code.
from workers.providers.registry import KINDS

__all__ = [
    "KIND_CAPABILITIES",
    "PROVIDER_KINDS",
    "ClientEntry",
    "ClientRegistry",
    "ConfigError",
    "KindOptions",
    "LongContextPrice",
    "ModelConfig",
    "ModelPrice",
    "ProviderConfig",
    "ProvidersFile",
    "RouteTarget",
    "SecretRef",
    "Timeouts",
    "load_client_registry",
    "load_providers",
    "options_model",
]

PROVIDER_KINDS: tuple[str, ...] = tuple(KINDS)
if TYPE_CHECKING:
    ProviderKind = str
else:  # the registered kinds, as a Literal so the JSON schema lists them and errors name them
    ProviderKind = Literal[PROVIDER_KINDS]
# What each kind of provider can do at all, whatever models it lists (from its declaration).
KIND_CAPABILITIES: dict[str, frozenset[str]] = {name: frozenset(spec.capabilities) for name, spec in KINDS.items()}
_NAME = NAME_PATTERN  # provider and client names (shared.names: readable without pydantic)
_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
_SHA256 = r"^[0-9a-f]{64}$"
_ISO_DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_EXAMPLE_URL = next(iter(KINDS.values())).default_base_url
_KEY_REF_EXAMPLE = '"secret": {"env": "VAR_NAME"} or {"file": "/path/to/key"}'


def _problem(message: str, fix: str, *, at: str = "") -> PydanticCustomError:
    """A validation error carrying its own fix; ``at`` extends the path for whole-model checks,
    whose errors pydantic would otherwise report at the model itself rather than the key at fault."""
    return PydanticCustomError("config_problem", message, {"fix": fix, "at": at})


_Strict = StrictModel


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. ``str()`` is the operator message."""

    def __init__(self, file: Path, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {file}:\n{lines}")


class SecretRef(_Strict):
    """Where a worker finds its provider key: an environment variable or a 0600 file."""

    env: Annotated[str | None, Field(pattern=_ENV_NAME)] = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if self.env is not None and self.file is not None:
            raise _problem('gives both "env" and "file"', 'keep exactly one: "env" (a variable name) or '
                           '"file" (a path to a 0600 file)')
        if self.env is None and self.file is None:
            raise _problem(
                'gives neither "env" nor "file"',
                'add "env": "VAR_NAME" or "file": "/path/to/key"',
            )
        return self


class Timeouts(_Strict):
    connect_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    read_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    total_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


_PER_MTOK = "USD per million tokens"
_Rate = Annotated[float, Field(ge=0, le=100_000)]


class LongContextPrice(_Strict):
    """Rates that replace the base ones for a call whose input is above a threshold (e.g. Gemini 2.5 Pro
    over 200k prompt tokens): every token of that call, output included, is billed at these rates."""

    above_input_tokens: Annotated[int, Field(ge=1, description="input tokens (cached ones included) above which "
                                            "these rates apply")]
    input: Annotated[_Rate, Field(description=_PER_MTOK)]
    cached_input: Annotated[_Rate | None, Field(description=f"{_PER_MTOK}; null: as input")] = None
    output: Annotated[_Rate, Field(description=_PER_MTOK)]
    reasoning: Annotated[_Rate | None, Field(description=f"{_PER_MTOK}; null: as output")] = None


class ModelPrice(_Strict):
    """What a model costs, in USD per million tokens, and when and where that was read.

    ``input`` applies to input tokens not read from the provider's prompt cache, ``cached_input``
    to those read from it (null: no discount, billed as input), ``output`` to output tokens that
    are not reasoning, ``reasoning`` to the reasoning (thinking) ones (null: billed as output,
    which is how every shipped provider bills them).
    """

    input: Annotated[_Rate, Field(description=_PER_MTOK + " of input not read from the prompt cache")]
    cached_input: Annotated[_Rate | None, Field(description=f"{_PER_MTOK} of input read from the provider's "
                                                "prompt cache; null: no discount (billed as input)")] = None
    output: Annotated[_Rate, Field(description=_PER_MTOK + " of output")]
    reasoning: Annotated[_Rate | None, Field(description=f"{_PER_MTOK} of reasoning (thinking) output; null: "
                                             "billed as output")] = None
    long_context: LongContextPrice | None = None
    checked: Annotated[str, Field(pattern=_ISO_DAY, description="the day these rates were read "
                                  "(ISO date, YYYY-MM-DD): prices change, so this says how old they are")]
    source: Annotated[str | None, Field(max_length=300, description="where they were read (the provider's "
                                        "pricing page), or a note such as a negotiated rate")] = None

    @field_validator("checked")
    @classmethod
    def _real_day(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise _problem("is not a calendar day", "write the day as YYYY-MM-DD, e.g. 2026-12-08") from None
        return value


class ModelConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    capabilities: Annotated[list[Capability], Field(min_length=1)]
    # Lower is preferred when several models could serve a call (routing and fallbacks).
    priority: Annotated[int, Field(ge=0, le=1000)] = 100
    # Free-form quality/cost score an operator can record (e.g. from an eval); informational.
    score: Annotated[float | None, Field(ge=0, le=100)] = None
    # What the model can do beyond its capabilities (vision, json_schema, tools, reasoning);
    # None: what the server says where it discovers models, else all its kind can carry.
    features: list[Feature] | None = None
    context_length: Annotated[int | None, Field(ge=1)] = None
    max_output_tokens: Annotated[int | None, Field(ge=1)] = None
    # What a call costs (gateway.pricing); None: unknown (cost not recorded, listed in getHealth),
    # except on a local kind (``KindSpec.local``), where a model without a price costs nothing.
    price: ModelPrice | None = None


class KindOptions(StrictModel):
    """The base of each kind's options model, built from its ``KindOption`` declarations."""


def _options_field(option: KindOption) -> Any:
    return (Annotated[option.type, Field(pattern=option.pattern, description=option.description)], option.default)


_OPTION_MODELS: dict[str, type[KindOptions]] = {
    name: create_model(f"{name.title()}Options", __base__=KindOptions,
                       **{o.name: _options_field(o) for o in spec.options})
    for name, spec in KINDS.items()
}


def options_model(kind: str) -> type[KindOptions]:
    """The model ``providers.<name>.options`` of a ``kind`` provider is validated against."""
    return _OPTION_MODELS[kind]


_DISCOVERY_KEYS = ("discover_models", "discovery_interval_s")
_OPTIONS_SCHEMA = {"type": "object", "description": "Settings of this provider's kind; the keys allowed depend on "
                   "kind (see allOf), and a kind without settings takes none"}


class ProviderConfig(_Strict):
    model_config = ConfigDict(json_schema_extra=lambda schema: _kind_rules(schema))

    kind: ProviderKind
    base_url: Annotated[str, Field(min_length=1)]
    secret: SecretRef | None = None
    models: list[ModelConfig] = Field(default_factory=list)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    # The kind's own settings, checked against its declaration (``KindSpec.options``).
    options: Annotated[SerializeAsAny[KindOptions], WithJsonSchema(_OPTIONS_SCHEMA)] = Field(
        default_factory=KindOptions, validate_default=True)
    # Kinds that discover their models (``KindSpec.discovers_models``) only: learn models
    # from the server's own listing, and how often. Refused on any other kind.
    discover_models: bool = True
    discovery_interval_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    # Lower is preferred among providers that can serve a call.
    priority: Annotated[int, Field(ge=0, le=1000)] = 100
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    circuit: CircuitPolicy = Field(default_factory=CircuitPolicy)
    stream_guards: StreamGuards = Field(default_factory=StreamGuards)
    # All clients' spending at this provider per UTC month (gateway.budgets); None: no limit.
    budget: ProviderBudget | None = None
    # Top-level keys of an older file that loading moved into ``options`` (for config warnings).
    _moved: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _moved_keys_into_options(cls, data: Any, handler: ModelWrapValidatorHandler[ProviderConfig]) -> ProviderConfig:
        moved: tuple[tuple[str, str], ...] = ()
        if isinstance(data, dict) and isinstance(data.get("kind"), str) and data["kind"] in KINDS:
            data, moved = _move_old_keys(data, KINDS[data["kind"]])
        config = handler(data)
        config._moved = moved
        return config

    @field_validator("options", mode="before")
    @classmethod
    def _kind_options(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind not in KINDS:
            return KindOptions()  # the kind itself is reported; its options cannot be judged
        model = options_model(kind)
        if type(value) is model:
            return value
        if isinstance(value, KindOptions):
            value = value.model_dump()
        try:
            return model.model_validate(value, strict=True)
        except ValidationError as exc:
            details = [_option_error(kind, model, e) for e in exc.errors(include_url=False)]
            raise ValidationError.from_exception_data("options", details) from None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise _problem("must be an http:// or https:// URL", f"write the full URL, e.g. {_EXAMPLE_URL}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_when_needed(self) -> ProviderConfig:
        if KINDS[self.kind].needs_key and self.secret is None:
            raise _problem(
                f"provider kind {self.kind!r} needs a key reference",
                f"add {_KEY_REF_EXAMPLE}; the key itself never goes in this file",
                at="secret",
            )
        return self

    @model_validator(mode="after")
    def _discovery_where_it_applies(self) -> ProviderConfig:
        given = [key for key in _DISCOVERY_KEYS if key in self.model_fields_set]
        if given and not KINDS[self.kind].discovers_models:
            able = ", ".join(spec.title for spec in KINDS.values() if spec.discovers_models) or "none"
            raise _problem(
                f"applies only to kinds that discover their models (registered: {able}); a provider of "
                f"kind {self.kind!r} serves the models listed under models",
                "remove it, and list this provider's models under models",
                at=given[0],
            )
        return self

    def models_for(self, capability: Capability) -> list[str]:
        return [m.id for m in self.models if capability in m.capabilities]

    def option(self, declared: KindOption) -> str | int | float | bool:
        """The value of one of this kind's declared options."""
        value: str | int | float | bool = getattr(self.options, declared.name)
        return value

    @property
    def moved_keys(self) -> tuple[tuple[str, str], ...]:
        """(old top-level key, option name) for each key this provider's entry gave in the old place."""
        return self._moved


def _move_old_keys(data: dict[str, Any], spec: KindSpec) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """``data`` with the kind's old top-level keys moved into ``options`` (they still load, with a warning)."""
    moved = tuple((old, new) for old, new in spec.moved_options if old in data)
    options = data.get("options", {})
    if not moved or not isinstance(options, dict):
        return data, ()  # a non-object options is reported by its own validation
    for old, new in moved:
        if new in options:
            raise _problem(f"is given twice, here and as options.{new}", f"keep only options.{new}", at=old)
    rest = {key: value for key, value in data.items() if key not in dict(moved)}
    return {**rest, "options": {**options, **{new: data[old] for old, new in moved}}}, moved


def _option_error(kind: str, model: type[KindOptions], err: Any) -> InitErrorDetails:
    """A nested option error restated to name the kind and what it takes, with the usual fix."""
    field = model.model_fields.get(str(err["loc"][0])) if err["loc"] else None
    if err["type"] == "extra_forbidden":
        takes = ", ".join(model.model_fields) or "none"
        message = f"unknown option for kind {kind!r} (its options: {takes})"
        fix = "remove it or correct its spelling (config/schema/ lists each kind's options)"
    elif not err["loc"]:
        message, fix = f"must be a JSON object (the options of kind {kind!r})", "use a JSON object {...}"
    else:
        message = f"{err['msg']} (an option of kind {kind!r})"
        fix = _fix_for(err) + (f"; it is: {field.description}" if field is not None and field.description else "")
    error = PydanticCustomError("config_problem", "{message}", {"message": message, "fix": fix})
    return {"type": error, "loc": tuple(err["loc"]), "input": err.get("input")}


def _an(title: str) -> str:
    return f"{'an' if title[:1].lower() in 'aeiou' else 'a'} {title}"


def _kind_rules(schema: dict[str, Any]) -> None:
    """The JSON schema's per-kind rules, read from the declarations: each kind's options, the
    discovery keys only where the kind discovers, and old top-level keys marked deprecated."""
    rules: list[dict[str, Any]] = []
    for name, spec in KINDS.items():
        options = {**options_model(name).model_json_schema(), "title": f"{spec.title} options",
                   "description": f"Settings of {_an(spec.title)} provider" + ("" if spec.options
                                                                             else " (it takes none)")}
        refused = [] if spec.discovers_models else list(_DISCOVERY_KEYS)
        refused += [old for other in KINDS.values() if other is not spec for old, _ in other.moved_options]
        then: dict[str, Any] = {"properties": {"options": options}}
        if refused:
            then["not"] = {"anyOf": [{"required": [key]} for key in refused]}
        rules.append({"if": {"properties": {"kind": {"const": name}}, "required": ["kind"]}, "then": then})
        for old, new in spec.moved_options:
            schema["properties"][old] = {**options["properties"][new], "deprecated": True,
                                         "description": f"{spec.title} only: moved to options.{new}"}
    schema["allOf"] = rules


class RouteTarget(_Strict):
    provider: str
    model: str | None = None


class ProvidersFile(_Strict):
    providers: dict[Annotated[str, Field(pattern=_NAME)], ProviderConfig]
    # The route used when a call names neither a provider nor a known model.
    defaults: dict[Capability, RouteTarget] = Field(default_factory=dict)
    # Where to go, in order, when the chosen provider is down, its circuit is open, or it
    # fails retryably before the first chunk. Targets lacking the capability are skipped.
    fallbacks: dict[Capability, list[RouteTarget]] = Field(default_factory=dict)
    # Short names a call may use as "model", e.g. {"fast": {"provider": "main", "model": "gpt-4o-mini"}}.
    aliases: dict[Annotated[str, Field(min_length=1, max_length=64)], RouteTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _targets_exist(self) -> ProvidersFile:
        targets: list[tuple[str, RouteTarget]] = [(f"defaults.{c}", t) for c, t in self.defaults.items()]
        targets += [(f"fallbacks.{c}.{i}", t) for c, ts in self.fallbacks.items() for i, t in enumerate(ts)]
        targets += [(f"aliases.{name}", t) for name, t in self.aliases.items()]
        for where, target in targets:
            if target.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none"
                raise _problem(
                    f"names provider {target.provider!r}, which is not in providers (known: {known})",
                    "name a configured provider, or add one with this name under providers",
                    at=f"{where}.provider",
                )
        return self


class ClientEntry(_Strict):
    # SHA-256 of the token. Tokens are 256-bit random strings, so a fast hash is safe:
    # there is nothing to brute-force, unlike a human password.
    token_sha256: Annotated[str, Field(pattern=_SHA256)]
    tools: list[ToolGrant] = Field(default_factory=lambda: list[ToolGrant](["*"]))
    providers: list[str] = Field(default_factory=lambda: ["*"])
    # Model ids (or aliases' targets) the client may be routed to; "*" for any.
    models: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=lambda: ["*"])
    disabled: bool = False
    # Raised by `clients disable`: together with token_sha256 it binds session tokens
    # (shared.session_tokens.session_binding), so disabling ends them for good.
    session_generation: Annotated[int, Field(ge=0, description="Raised on disable; ends earlier session tokens")] = 0
    expires_at: Annotated[int | None, Field(description="Unix time after which the token is refused")] = None
    created_at: int | None = None
    limits: ClientLimits = Field(default_factory=ClientLimits)
    # Spending limits per UTC day and month, enforced before dispatch (gateway.budgets); None: none.
    budget: ClientBudget | None = None
    # Whether a call may name provider/model explicitly (manual override of routing).
    allow_override: bool = True

    def may_call(self, tool: str) -> bool:
        return "*" in self.tools or tool in self.tools

    def may_use(self, provider: str) -> bool:
        return "*" in self.providers or provider in self.providers

    def may_use_model(self, model: str) -> bool:
        return "*" in self.models or model in self.models


class ClientRegistry(_Strict):
    clients: dict[Annotated[str, Field(pattern=_NAME)], ClientEntry] = Field(default_factory=dict)


_FIXES = {
    "missing": "add this key",
    "extra_forbidden": "remove this key or correct its spelling (config/schema/ lists the allowed keys)",
    "literal_error": "use one of the allowed values",
    "int_type": "use a whole number, without quotes",
    "int_parsing": "use a whole number, without quotes",
    "int_from_float": "use a whole number, without quotes",
    "float_type": "use a number, without quotes",
    "float_parsing": "use a number, without quotes",
    "bool_type": "use true or false, without quotes",
    "bool_parsing": "use true or false, without quotes",
    "string_type": "use a string in double quotes",
    "list_type": "use a JSON array [...]",
    "dict_type": "use a JSON object {...}",
    "model_type": "use a JSON object {...}",
    "model_attributes_type": "use a JSON object {...}",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "too_short": "add at least one item",
    "string_too_short": "give a non-empty value",
    "string_too_long": "shorten this value",
}
_PATTERN_FIXES = {
    _NAME: "use 1-32 lowercase letters, digits, '-' or '_', starting with a letter",
    _ENV_NAME: "use an environment variable name: capital letters, digits and '_'",
    _SHA256: "use the 64-character hex SHA-256 that `llm-caller clients add` writes",
    _ISO_DAY: "write the day as YYYY-MM-DD, e.g. 2026-12-08",
}
_GENERIC_FIX = "correct this value (config/schema/ describes every key)"
# Keys people reach for when pasting a provider key straight into the file.
_SECRET_LIKE = {"apikey", "key", "token", "apitoken", "secretkey", "password", "accesstoken", "authorization"}


def _looks_like_secret(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    return norm in _SECRET_LIKE or norm.endswith(("apikey", "token", "password"))


def _fix_for(err: Any) -> str:
    ctx = err.get("ctx") or {}
    if "fix" in ctx:
        return str(ctx["fix"])
    if err["type"] == "extra_forbidden" and err["loc"] and _looks_like_secret(str(err["loc"][-1])):
        return f"remove it: provider keys never go in config files; reference one with {_KEY_REF_EXAMPLE}"
    if err["type"] == "string_pattern_mismatch":
        return _PATTERN_FIXES.get(ctx.get("pattern", ""), f"match the pattern {ctx.get('pattern')}")
    return _FIXES.get(err["type"], _GENERIC_FIX)


def _describe(err: Any) -> str:
    """One operator line per problem: the dotted path, what is wrong, and the fix."""
    loc = [str(p) for p in err["loc"]]
    at = (err.get("ctx") or {}).get("at")
    if at:
        loc.append(str(at))
    path = ".".join(loc) or "(top level)"
    msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return f"{path}: {msg}; fix: {_fix_for(err)}"


def _read_json(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        fix = "create it (`llm-caller init --config-dir DIR` writes a starter)"
        raise ConfigError(file, [f"file not found; fix: {fix}"]) from None
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
        # strict: JSON has real types, so "32" for a number or "no" for a boolean is a mistake
        # to report, not a value to guess at (lax mode would silently accept both).
        return model.model_validate(data, strict=True)
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
