"""Scenario files: what to call through the MCP surface and what must come back.

Each ``uat/scenarios/*.json`` holds one scenario. Files are validated strictly (an
unknown key or a misspelt error type is an error naming the file), so a typo cannot
quietly turn an expectation off. ``pilot-*.json`` files are the two pilot tools'
journeys: a coding assistant and an internal retrieval (RAG) tool.

A scenario may go on with further calls (``then``), each made by the same client once
the one before passed; their arguments may take values from the previous call's
structured result with ``{"$result": "dotted.path"}`` (see ``uat.steps``). It may also
queue emulator faults for its first call (``emulator_faults``) and count the requests an
emulator serves during the run (``emulator_requests``), which only a run on the sandbox's
own emulators can do (``uat.emulator_access``).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emulators.faults import FaultSpec
from shared.errors import ERROR_TYPES
from workers.providers.registry import KINDS

__all__ = ["RESULT_REF", "SCENARIO_DIR", "Expect", "PathCheck", "Scenario", "ScenarioError", "Step",
           "load_scenarios"]

# {"$result": "dotted.path"} in a step's arguments: the value at that path in the previous result.
RESULT_REF = "$result"

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(Exception):
    """A scenario file is unreadable or invalid; the message names the file and the field."""


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathCheck(_Strict):
    """One check on a value inside the result; give exactly one of these keys."""

    equals: Any = None
    exists: bool | None = None
    length: Annotated[int, Field(ge=0)] | None = None
    contains: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PathCheck:
        if len(self.model_fields_set) != 1:
            raise ValueError("give exactly one of equals, exists, length, contains")
        return self


class Expect(_Strict):
    is_error: bool = False
    error_type: str | None = None
    text_contains: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    min_progress: Annotated[int, Field(ge=1)] | None = None
    progress_joins_to_text: bool = False
    structured_paths: dict[str, PathCheck] = Field(default_factory=dict)
    # tools/list: the tools listed are exactly shared.tool_names.TOOL_NAMES, in that order.
    registered_tools: bool = False
    auth_rejected: bool = False

    @field_validator("error_type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in ERROR_TYPES:
            raise ValueError(f"unknown error type {value!r}; known: {', '.join(ERROR_TYPES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.error_type and not self.is_error:
            raise ValueError("error_type needs is_error: true")
        if self.auth_rejected and (self.is_error or self.structured_paths or self.text_contains
                                   or self.registered_tools):
            raise ValueError("auth_rejected: the call never reaches a tool, so expect nothing else")
        return self

    @property
    def needs_progress(self) -> bool:
        return self.min_progress is not None or self.progress_joins_to_text


def _result_refs(value: Any) -> list[Any]:
    """Every ``{"$result": ...}`` object inside ``value``."""
    if isinstance(value, dict):
        if RESULT_REF in value:
            return [value]
        return [ref for item in value.values() for ref in _result_refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _result_refs(item)]
    return []


class Step(_Strict):
    """A further call of the scenario, made by the same client after the previous call passed."""

    tool: str | None = None  # default: the scenario's tool
    arguments: dict[str, Any] = Field(default_factory=dict)
    expect: Expect

    @field_validator("arguments")
    @classmethod
    def _refs_well_formed(cls, value: dict[str, Any]) -> dict[str, Any]:
        for ref in _result_refs(value):
            path = ref[RESULT_REF]
            if len(ref) != 1 or not isinstance(path, str) or not path:
                raise ValueError(f'a reference is {{"{RESULT_REF}": "dotted.path"}} alone, not {ref!r}')
        return value


def _check_kinds(value: dict[str, Any]) -> dict[str, Any]:
    """Keys must name emulator kinds."""
    for kind in value:
        if kind not in KINDS:
            raise ValueError(f"no emulator kind {kind!r}; known: {', '.join(KINDS)}")
    return value


def _check_faults(value: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Emulator kinds must exist and each spec must be one the emulators accept."""
    for kind, specs in _check_kinds(value).items():
        for index, spec in enumerate(specs):
            try:
                FaultSpec.model_validate(spec)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}"
                                     for err in exc.errors(include_url=False, include_input=False))
                raise ValueError(f"{kind} fault {index}: {problems}") from None
    return value


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    description: Annotated[str, Field(min_length=1)]
    pilot: Literal["coding-assistant", "rag-tool"] | None = None
    method: Literal["tools/call", "tools/list"] = "tools/call"
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    # "invalid" sends a well-formed token that is not in the registry.
    token: Literal["valid", "invalid"] = "valid"  # noqa: S105 (a choice, not a secret)
    expect: Expect
    then: list[Step] = Field(default_factory=list)
    # Emulator kind -> fault specs (emulators.faults.FaultSpec) queued before the first call.
    emulator_faults: Annotated[dict[str, list[dict[str, Any]]], AfterValidator(_check_faults)] = Field(
        default_factory=dict)
    # Emulator kind -> request path -> how many requests the run (every step) makes there.
    emulator_requests: Annotated[dict[str, dict[str, Annotated[int, Field(ge=0)]]], AfterValidator(_check_kinds)] = (
        Field(default_factory=dict))

    @property
    def wants_invalid_token(self) -> bool:
        return self.token == "invalid"  # noqa: S105 (a choice, not a secret)

    @model_validator(mode="after")
    def _tool_for_calls(self) -> Scenario:
        if (self.method == "tools/call") != (self.tool is not None):
            raise ValueError('"tool" is required for tools/call and not allowed for tools/list')
        if self.token == "invalid" and not self.expect.auth_rejected:  # noqa: S105 (a choice, not a secret)
            raise ValueError('token "invalid" needs expect.auth_rejected: true')
        if self.then and (self.method != "tools/call" or self.expect.auth_rejected or self.expect.is_error):
            raise ValueError('"then" follows a tools/call that succeeds')
        if _result_refs(self.arguments):
            raise ValueError(f'"{RESULT_REF}" references belong in "then" steps (there is no previous result)')
        return self


def _load_one(path: Path) -> Scenario:
    try:
        scenario = Scenario.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise ScenarioError(f"{path}: {problems}") from None
    if scenario.name != path.stem:
        raise ScenarioError(f"{path}: name {scenario.name!r} must match the file name {path.stem!r}")
    return scenario


def load_scenarios(folder: Path = SCENARIO_DIR, only: list[str] | None = None) -> list[Scenario]:
    """Every scenario in ``folder`` sorted by name, or just those ``only`` names or matches
    (a name, or a shell pattern such as ``feature-*``)."""
    scenarios = [_load_one(path) for path in sorted(folder.glob("*.json"))]
    if only:
        unknown = sorted(p for p in only if not any(fnmatch.fnmatchcase(s.name, p) for s in scenarios))
        if unknown:
            raise ScenarioError(f"no such scenario in {folder}: {', '.join(unknown)}")
        scenarios = [s for s in scenarios if any(fnmatch.fnmatchcase(s.name, p) for p in only)]
    if not scenarios:
        raise ScenarioError(f"no scenarios found in {folder}")
    return scenarios
