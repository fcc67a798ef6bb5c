"""Checks on a Messages request beyond its basic fields: sampling, content blocks, tools,
structured output and thinking, each refused the way the real API refuses it (a 400
``invalid_request_error`` whose message names the field)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from emulators.base import ApiError
from emulators.content import count_words
from emulators.features import decoded_size

__all__ = ["BUDGETED", "Features", "ThinkingRules", "check_sampling", "check_thinking_echo", "parse_blocks",
           "parse_features"]

MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_BLOCK_TYPES = frozenset({"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
MIN_THINKING_BUDGET = 1024


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


@dataclass(slots=True)
class Features:
    """What a request asks for beyond text."""

    stop_sequences: tuple[str, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    thinking_budget: int | None = None  # budgeted thinking ("enabled")
    effort: str | None = None  # output_config.effort; with adaptive thinking it steers the thinking
    adaptive: bool = False  # thinking {"type": "adaptive"}
    images: tuple[tuple[str, int], ...] = ()  # (media type, decoded size) in the last user turn
    cached_tokens: int = 0  # words in blocks marked cache_control (read from the "cache")

    @property
    def thinks(self) -> bool:
        """Thinking is on, budgeted or adaptive."""
        return self.thinking_budget is not None or self.adaptive


@dataclass(frozen=True, slots=True)
class ThinkingRules:
    """What one model takes: its thinking types (``enabled``, ``disabled``, ``adaptive``) and
    its effort levels (none: it refuses ``output_config.effort``)."""

    types: frozenset[str] = frozenset({"enabled", "disabled"})
    efforts: tuple[str, ...] = ()


BUDGETED = ThinkingRules()
_EFFORTS = ("low", "medium", "high", "xhigh", "max")


def check_sampling(body: dict[str, Any], both_refused: bool) -> tuple[str, ...]:
    """temperature, top_p, top_k and stop_sequences; returns the stop sequences."""
    for name, high in (("temperature", 1.0), ("top_p", 1.0)):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0.0 <= value <= high):
            raise invalid(f"{name}: Input should be a number between 0 and {high:g}")
    if both_refused and body.get("temperature") is not None and body.get("top_p") is not None:
        raise invalid("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    stops = body.get("stop_sequences")
    if stops is None:
        return ()
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise invalid("stop_sequences: Input should be a valid list of non-empty strings")
    return tuple(stops)


def parse_blocks(messages: list[Any], system: Any) -> tuple[list[tuple[str, int]], int]:
    """Check every content block; return the last user turn's images and the cached words."""
    cached = _cached_words(system) if isinstance(system, list) else 0
    images: list[tuple[str, int]] = []
    previous_tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            if previous_tool_ids:
                raise _missing_results(previous_tool_ids)
            continue
        if not isinstance(content, list):
            raise invalid(f"messages.{index}.content: Input should be a valid string or list of content blocks")
        turn_images, tool_ids, result_ids = _check_turn(index, message["role"], content)
        if previous_tool_ids - result_ids:
            raise _missing_results(previous_tool_ids - result_ids)
        if result_ids - previous_tool_ids:
            raise invalid(f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                          f"{sorted(result_ids - previous_tool_ids)[0]}. Each `tool_result` block must have a "
                          "corresponding `tool_use` block in the previous message.")
        previous_tool_ids = tool_ids
        cached += _cached_words(content)
        if message["role"] == "user":
            images = turn_images
    return images, cached


def _missing_results(ids: set[str]) -> ApiError:
    return invalid(f"messages: `tool_use` ids were found without `tool_result` blocks immediately after: "
                   f"{', '.join(sorted(ids))}. Each `tool_use` block must have a corresponding `tool_result` "
                   "block in the next message.")


def _cached_words(blocks: list[Any]) -> int:
    return sum(count_words(b.get("text", "")) for b in blocks
               if isinstance(b, dict) and b.get("cache_control") and isinstance(b.get("text", ""), str))


def _check_turn(index: int, role: str, content: list[Any]) -> tuple[list[tuple[str, int]], set[str], set[str]]:
    images: list[tuple[str, int]] = []
    tool_ids: set[str] = set()
    result_ids: set[str] = set()
    for number, block in enumerate(content):
        where = f"messages.{index}.content.{number}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _BLOCK_TYPES:
            raise invalid(f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the "
                          "expected tags")
        assert isinstance(block, dict)
        if kind == "text" and not isinstance(block.get("text"), str):
            raise invalid(f"{where}.text.text: Field required")
        elif kind == "image":
            images.append(_image(where, block.get("source")))
        elif kind == "tool_use":
            tool_ids.add(_tool_use(where, role, block))
        elif kind == "tool_result":
            result_ids.add(_tool_result(where, role, block))
        elif kind == "thinking" and not (isinstance(block.get("thinking"), str)
                                         and isinstance(block.get("signature"), str)):
            raise invalid(f"{where}.thinking.signature: Field required")
    return images, tool_ids, result_ids


def _image(where: str, source: Any) -> tuple[str, int]:
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise invalid(f"{where}.image.source: Input tag '{source.get('type') if isinstance(source, dict) else None}'"
                      " found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'")
    media = source.get("media_type")
    if media not in MEDIA_TYPES:
        raise invalid(f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                      "'image/gif' or 'image/webp'")
    data = source.get("data")
    size = decoded_size(data) if isinstance(data, str) else None
    if not size:
        raise invalid(f"{where}.image.source.base64.data: The image data is not valid base64.")
    return str(media), size


def _tool_use(where: str, role: str, block: dict[str, Any]) -> str:
    if role != "assistant":
        raise invalid(f"{where}: `tool_use` blocks can only be in `assistant` messages")
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise invalid(f"{where}.tool_use: `id` and `name` are required strings")
    if not _TOOL_ID.match(block["id"]):
        raise invalid(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(block.get("input"), dict):
        raise invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
    return str(block["id"])


def _tool_result(where: str, role: str, block: dict[str, Any]) -> str:
    if role != "user":
        raise invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
    if not isinstance(block.get("tool_use_id"), str):
        raise invalid(f"{where}.tool_result.tool_use_id: Field required")
    content = block.get("content")
    if content is not None and not isinstance(content, str | list):
        raise invalid(f"{where}.tool_result.content: Input should be a valid string or list of blocks")
    return str(block["tool_use_id"])


def parse_features(body: dict[str, Any], max_tokens: int, structured_outputs: bool,
                   rules: ThinkingRules = BUDGETED) -> Features:
    """tools, tool_choice, output_config and thinking (images and cache come from the blocks)."""
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), tools)
    schema = _output_schema(body.get("output_config"), structured_outputs)
    effort = _effort(body.get("output_config"), rules)
    kind = _thinking_type(body.get("thinking"), rules)
    budget = _budget(body["thinking"], max_tokens) if kind == "enabled" else None
    if kind in ("enabled", "adaptive"):
        if choice is not None and choice["type"] in ("any", "tool"):
            raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
        if body.get("temperature") not in (None, 1, 1.0):
            raise invalid("`temperature` may only be set to 1 when thinking is enabled.")
    return Features(tools=tools, tool_choice=choice, output_schema=schema, thinking_budget=budget,
                    effort=effort, adaptive=kind == "adaptive")


def _effort(config: Any, rules: ThinkingRules) -> str | None:
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise invalid("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    if effort not in rules.efforts:
        raise invalid(f"output_config.effort: effort '{effort}' is not supported by this model"
                      + (f" (supported: {', '.join(rules.efforts)})" if rules.efforts else ""))
    return str(effort)


def _thinking_type(thinking: Any, rules: ThinkingRules) -> str | None:
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise invalid("thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', "
                      "'adaptive'")
    kind = str(thinking["type"])
    if kind not in rules.types:
        raise invalid(f"thinking.type: '{kind}' thinking is not supported on this model. Use "
                      + " or ".join(f"thinking.type '{t}'" for t in sorted(rules.types) if t != "disabled")
                      + " instead.")
    if kind == "adaptive" and thinking.get("display") not in (None, "summarized", "omitted"):
        raise invalid("thinking.adaptive.display: Input should be 'summarized' or 'omitted'")
    if kind == "adaptive" and "budget_tokens" in thinking:
        raise invalid("thinking.adaptive.budget_tokens: Extra inputs are not permitted")
    return None if kind == "disabled" else kind


def _tools(tools: Any) -> tuple[dict[str, Any], ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
            raise invalid(f"tools.{index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(f"tools.{index}.custom.input_schema: Field required")
        if schema.get("type") != "object":
            raise invalid(f"tools.{index}.custom.input_schema.type: Input should be 'object'")
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise invalid(f"tools.{index}.custom.description: Input should be a valid string")
    return tuple(tools)


def _tool_choice(choice: Any, tools: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    if choice["type"] in ("any", "tool") and not tools:
        raise invalid("tool_choice: may only be specified while providing tools.")
    if choice["type"] == "tool" and choice.get("name") not in {t["name"] for t in tools}:
        raise invalid(f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in the provided tools")
    return choice


def _output_schema(config: Any, supported: bool) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise invalid("output_config: Input should be a valid dictionary")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise invalid("output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}")
    if not supported:
        raise invalid("output_config.format: structured outputs are not supported by this model.")
    return dict(fmt["schema"])


def _budget(thinking: dict[str, Any], max_tokens: int) -> int:
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise invalid("thinking.enabled.budget_tokens: Field required")
    if budget < MIN_THINKING_BUDGET:
        raise invalid(f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}")
    if budget >= max_tokens:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return budget


def check_thinking_echo(messages: list[Any]) -> None:
    """With thinking on, an assistant turn that used tools must start with its thinking block."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
            first = content[0].get("type") if isinstance(content[0], dict) else None
            if first not in ("thinking", "redacted_thinking"):
                raise invalid(f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                              f"found `{first}`. When `thinking` is enabled, a final `assistant` message must start "
                              "with a thinking block. To avoid this requirement, disable `thinking`.")
        return
