"""The shape of a provider kind's declaration: every fact the rest of the code needs about it.

Each kind declares one ``KindSpec`` in ``workers/providers/<kind>/kind.py`` (a declarative
module that imports only ``shared``), and ``workers.providers.registry.KINDS`` lists them.
Config validation, the gateway's routing, the worker runtime, the setup assistant, probes,
config warnings and the JSON schema all read these facts from there, so a new kind is one
folder plus one registry line.

Settings only one kind has (Anthropic's API version header, say) are that kind's *options*:
``KindOption`` declarations in its ``KindSpec``, from which ``shared.config`` builds the
model a provider's ``options`` object in providers.json is validated against, so the shared
provider model carries no kind's own fields. They are plain declarations, not a pydantic
model, so a worker (which imports every declaration through the registry) never loads
pydantic (decision D60's neighbour on worker memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

from shared.chat_parts import Feature, SamplingParam
from shared.models import Capability

__all__ = ["THINKING_LEVELS", "BaseUrlStyle", "BudgetRange", "KindOption", "KindSpec", "LevelRule", "SamplingRule"]

# Every thinking level a provider names, lowest first (Gemini 3's thinkingLevel enum, lower-cased).
THINKING_LEVELS = ("minimal", "low", "medium", "high", "xhigh")

# "version": base_url includes the API version path (.../v1) and the worker appends endpoints;
# "root": base_url is the server's root and the worker appends the version path itself.
BaseUrlStyle = Literal["version", "root"]


@dataclass(frozen=True, slots=True)
class KindOption:
    """One setting of a kind, ``providers.<name>.options.<name>``: a scalar with a default."""

    name: str
    type: type[str] | type[int] | type[float] | type[bool]
    default: str | int | float | bool
    description: str  # shown in the JSON schema, the docs table and error fixes
    pattern: str | None = None  # a regular expression a string value must match


@dataclass(frozen=True, slots=True)
class BudgetRange:
    """The thinking budgets (tokens) the models whose ids start with ``model_prefix`` take, as
    the provider documents them; ``maximum`` None: bounded only by the model's output limit."""

    model_prefix: str
    minimum: int
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class LevelRule:
    """The thinking levels (``THINKING_LEVELS`` names) the models whose ids start with
    ``model_prefix`` take instead of a thinking budget, as the provider documents them."""

    model_prefix: str
    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """Sampling parameters the kind passes on that the models whose ids start with
    ``model_prefix`` refuse (the provider answers 400 when one is set), and whether they
    refuse a ``temperature`` (reasoning models that sample only at their default)."""

    model_prefix: str
    refused: frozenset[SamplingParam] = frozenset()
    temperature: bool = False


_Rule = TypeVar("_Rule", BudgetRange, LevelRule, SamplingRule)


def _longest(rules: tuple[_Rule, ...], model: str) -> _Rule | None:
    """The rule with the longest prefix of ``model``, or None."""
    matching = [r for r in rules if model.startswith(r.model_prefix)]
    return max(matching, key=lambda r: len(r.model_prefix)) if matching else None


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One provider kind's facts; ``adapter`` names the worker-side class that speaks its API."""

    name: str
    title: str  # how people write it, e.g. "LM Studio"
    capabilities: frozenset[Capability]  # what the kind can do at all, whatever models it lists
    needs_key: bool  # calls are refused without a key (a worker without one reports unconfigured)
    key_header: str  # where a key goes when there is one, e.g. "authorization"
    key_scheme: str  # what precedes the key in that header, e.g. "Bearer " ("" for the bare key)
    key_env: str | None  # the environment variable people usually keep this kind's key in
    default_base_url: str
    base_url_style: BaseUrlStyle
    # Paths the worker appends to base_url, the one a chat call uses first: a base_url ending
    # in one of them would be doubled (config warnings read this).
    added_paths: tuple[str, ...]
    joins: str  # what the worker appends, in words, for those warnings
    # The server's own listing is the model list (``discover_models`` applies, loaded state matters).
    discovers_models: bool
    # How an operator loads a listed but unloaded model, with {model}; None where models need no loading.
    load_hint: str | None
    adapter: str  # "module:Class" of the worker-side adapter, imported only by workers and the CLI
    # The kind's own settings, validated from ``providers.<name>.options`` (none by default).
    options: tuple[KindOption, ...] = ()
    # What the kind's API can carry beyond plain text (issue #16): the features its adapter
    # maps (a model's own list, from config or discovery, narrows this), and the sampling
    # parameters it passes on. The gateway refuses anything else before a paid request.
    features: frozenset[Feature] = frozenset()
    sampling: frozenset[SamplingParam] = frozenset()
    # The thinking budgets each family of the kind's models takes (the longest matching prefix
    # wins; a model matching none is sent the budget as asked), and how many output tokens the
    # answer keeps above the budget where the budget counts against max_tokens (Anthropic's
    # budget must stay below max_tokens). The gateway fits a call's budget into them.
    budget_ranges: tuple[BudgetRange, ...] = ()
    budget_headroom: int = 0
    # Model id prefixes whose thinking is adaptive (the model decides how much to think, steered by
    # an effort level) rather than budgeted: the adapter sends the call's effort, never a budget,
    # and the gateway leaves the budget unfitted (an explicit one is reported in ``adjusted``).
    adaptive_thinking: tuple[str, ...] = ()
    # Models that steer thinking by a named level (Gemini 3's thinkingLevel) rather than a budget:
    # the adapter sends the level for the call's effort (``thinking_level``), never a budget, and
    # the gateway notes an explicit budget in ``adjusted``, as for adaptive thinking.
    thinking_levels: tuple[LevelRule, ...] = ()
    # Models refusing sampling parameters their kind otherwise passes on: the gateway treats them
    # as not taken (``unsupported``, or dropped with drop_unsupported) before the call.
    sampling_rules: tuple[SamplingRule, ...] = ()
    # The models run on the operator's own machines (LM Studio, Ollama): no per-token charge, so a
    # model without a ``price`` in providers.json costs 0 rather than being unpriced.
    local: bool = False
    # Provider keys older files wrote at the top level that now live in ``options``:
    # (old key, option name). Such files still load; config warnings say where the key moved.
    moved_options: tuple[tuple[str, str], ...] = ()

    def budget_range(self, model: str) -> BudgetRange | None:
        """The thinking budgets ``model`` takes (the longest matching prefix), or None if not known."""
        return _longest(self.budget_ranges, model)

    def thinks_adaptively(self, model: str) -> bool:
        """Whether ``model`` takes adaptive thinking (an effort) instead of a thinking budget."""
        return model.startswith(self.adaptive_thinking) if self.adaptive_thinking else False

    def thinking_level(self, model: str, effort: str) -> str | None:
        """The thinking level ``model`` is sent for ``effort`` (low, medium, high): the same level
        when it takes it, else the nearest one above, else its highest; None when it takes no levels."""
        rule = _longest(self.thinking_levels, model)
        if rule is None or not rule.levels:
            return None
        if effort in rule.levels:
            return effort
        rank = THINKING_LEVELS.index(effort)
        above = [level for level in rule.levels if THINKING_LEVELS.index(level) > rank]
        return min(above, key=THINKING_LEVELS.index) if above else max(rule.levels, key=THINKING_LEVELS.index)

    def sampling_of(self, model: str) -> frozenset[SamplingParam]:
        """The sampling parameters a call to ``model`` may carry: the kind's, less what the model refuses."""
        rule = _longest(self.sampling_rules, model)
        return self.sampling - rule.refused if rule is not None else self.sampling

    def takes_temperature(self, model: str) -> bool:
        """Whether a call to ``model`` may set a temperature (False: the provider refuses any)."""
        rule = _longest(self.sampling_rules, model)
        return rule is None or not rule.temperature

    def key_variable(self) -> str:
        """The environment variable to suggest for this kind's key: the usual one, else NAME_API_KEY."""
        return self.key_env or f"{self.name.upper()}_API_KEY"

    def auth_headers(self, secret: str | None) -> dict[str, str]:
        """The header carrying ``secret``, or none without one."""
        return {self.key_header: f"{self.key_scheme}{secret}"} if secret else {}
