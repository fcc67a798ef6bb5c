"""Reading a GenerateContentRequest as the Gemini API does: contents and their parts, tools,
tool config and generation config, with the API's 400s for what it refuses.

Parts are exactly one of ``text``, ``inlineData``, ``functionCall``, ``functionResponse``
(``thought`` and ``thoughtSignature`` may go with them); unknown keys are refused the way
proto3 JSON parsing refuses them ("Unknown name ... Cannot find field."). A function
response turn must follow a function call turn and answer each of its calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from emulators.base import ApiError, Call
from emulators.content import count_words
from emulators.features import decoded_size

__all__ = ["GenerateRequest", "ModelRules", "Tool", "content_text", "invalid", "parse_generate"]

_PART_KINDS = ("text", "inlineData", "functionCall", "functionResponse")
_PART_KEYS = frozenset({*_PART_KINDS, "thought", "thoughtSignature"})
_CONFIG_KEYS = frozenset({
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed",
    "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
    "thinkingConfig", "responseLogprobs", "logprobs",
})
_MIME_TYPES = frozenset({"text/plain", "application/json", "text/x.enum"})
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
_MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED"})
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_CAMEL = re.compile(r"(?<=[a-z0-9])_([a-z])")
_FREE_FORM = frozenset({"args", "response", "parameters", "parametersJsonSchema", "responseJsonSchema",
                        "responseSchema"})
MAX_STOP_SEQUENCES = 5
_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")  # the ThinkingLevel enum's values
_PROTO_NAMES = {"presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty",
                "temperature": "temperature", "topP": "top_p", "topK": "top_k"}


@dataclass(frozen=True, slots=True)
class ModelRules:
    """What one emulated model takes in ``generationConfig``.

    ``budget``: the thinkingBudget range (-1, the model decides, is always taken); 0 turns
    thinking off only where the range starts at 0. ``levels``: the thinkingLevel values the
    model takes (Gemini 3; empty: the model refuses thinkingLevel), ``default_level`` how it
    thinks without a thinkingConfig (None or MINIMAL: no thoughts). ``refused``: generationConfig
    fields the model answers with a 400 when set (Gemini 3.5 Flash-Lite's penalties)."""

    name: str
    budget: tuple[int, int] = (0, 24576)
    levels: tuple[str, ...] = ()
    default_level: str | None = None
    refused: frozenset[str] = frozenset()


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _unknown(name: str, where: str) -> ApiError:
    return invalid(f"Invalid JSON payload received. Unknown name \"{name[:64]}\" at '{where}': Cannot find field.")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class GenerateRequest:
    user_text: str  # the last user turn's text: what the reply echoes
    max_tokens: int | None
    prompt_tokens: int
    images: list[tuple[str, int]] = field(default_factory=list)  # the last user turn's (mime type, bytes)
    tools: list[Tool] = field(default_factory=list)
    mode: str = "AUTO"
    allowed: list[str] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)  # the last turn's function responses
    json_mode: bool = False
    schema: dict[str, Any] | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None  # the level it thinks at (a ThinkingLevel value), when it takes levels
    include_thoughts: bool = False
    stop: list[str] = field(default_factory=list)  # stopSequences: the answer ends before the first

    def may_call(self) -> bool:
        """Whether the model calls a function now: tools offered, allowed, and a user spoke last."""
        return bool(self.tools) and self.mode != "NONE" and not self.results

    def tool_to_call(self) -> Tool:
        names = self.allowed if self.mode == "ANY" and self.allowed else [t.name for t in self.tools]
        return next(t for t in self.tools if t.name == names[0])


def content_text(content: Any, where: str) -> str:
    """The text of a Content object's parts; the API's 400 when it is not one."""
    return " ".join(p["text"] for p in _parts(content, where) if isinstance(p.get("text"), str))


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, dict):
        raise invalid(f"Invalid value at '{where}', must be an object")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
    for index, part in enumerate(parts):
        _check_part(part, f"{where}.parts[{index}]")
    return parts


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise invalid(f"Invalid value at '{where}', must be an object")
    for key in part:
        if key not in _PART_KEYS:
            raise _unknown(key, where)
    kinds = [k for k in _PART_KINDS if k in part]
    if len(kinds) != 1:
        raise invalid(f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
                      "initialized field")
    if "text" in part and not isinstance(part["text"], str):
        raise invalid(f"Invalid value at '{where}.text' (TYPE_STRING), {str(part['text'])[:40]}")
    if "inlineData" in part:
        _check_image(part["inlineData"], f"{where}.inline_data")
    if "functionCall" in part:
        call = part["functionCall"]
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise invalid(f"* GenerateContentRequest.{where}.function_call.name: Name cannot be empty.")
        if not isinstance(call.get("args", {}), dict):
            raise invalid(f"Invalid value at '{where}.function_call.args', must be an object")
    if "functionResponse" in part:
        result = part["functionResponse"]
        if not isinstance(result, dict) or not isinstance(result.get("name"), str) or not result["name"]:
            raise invalid(f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty.")
        if not isinstance(result.get("response"), dict):
            raise invalid(f"* GenerateContentRequest.{where}.function_response.response: must be an object.")


def _check_image(data: Any, where: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("mimeType"), str) or not isinstance(data.get("data"), str):
        raise invalid(f"* GenerateContentRequest.{where}: mime_type and data are required.")
    if decoded_size(data["data"]) is None:
        raise invalid(f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for "
                      f"\"{data['data'][:20]}\"")
    if data["mimeType"] not in _IMAGE_TYPES:
        raise invalid(f"Unsupported MIME type: {data['mimeType'][:64]}")


def camel_keys(value: Any) -> Any:
    """``value`` with its field names in lowerCamel: proto3 JSON accepts a field's proto name
    (``thinking_budget``) as well as its JSON name (``thinkingBudget``), and the google-genai
    SDK sends some of each. Free-form values (function arguments and responses, schemas)
    keep their keys."""
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _CAMEL.sub(lambda m: m.group(1).upper(), key) if "_" in key else key
        out[name] = item if name in _FREE_FORM else camel_keys(item)
    return out


def parse_generate(call: Call, model: ModelRules | None = None) -> GenerateRequest:
    body = camel_keys(call.json_object())
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    turns = []
    for index, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model", "function"):
            raise invalid(f"Please use a valid role: user, model. (contents[{index}].role)")
        turns.append((role, _parts(content, f"contents[{index}]")))
    _check_call_turns(turns)
    system = content_text(body["systemInstruction"], "system_instruction") if "systemInstruction" in body else ""
    req = _generation(body.get("generationConfig") or {}, model or ModelRules(""))
    texts = [" ".join(p["text"] for p in parts if isinstance(p.get("text"), str)) for _, parts in turns]
    req.user_text = next((t for (role, _), t in zip(reversed(turns), reversed(texts), strict=True) if role == "user"
                          and t), "")
    req.prompt_tokens = max(1, count_words(system) + sum(count_words(t) for t in texts))
    last_role, last_parts = turns[-1]
    if last_role != "model":
        req.images = [(p["inlineData"]["mimeType"], decoded_size(p["inlineData"]["data"]) or 0)
                      for p in last_parts if "inlineData" in p]
        req.results = [(p["functionResponse"]["name"], _result_text(p["functionResponse"]["response"]))
                       for p in last_parts if "functionResponse" in p]
    req.tools = _tools(body.get("tools"))
    req.mode, req.allowed = _tool_config(body.get("toolConfig"), req.tools)
    return req


def _result_text(response: dict[str, Any]) -> str:
    output = response.get("output", response)
    return output if isinstance(output, str) else orjson.dumps(output).decode()


def _check_call_turns(turns: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Function responses come right after a function call turn, one for each of its calls."""
    for index, (_, parts) in enumerate(turns):
        answered = sum("functionResponse" in p for p in parts)
        if not answered:
            continue
        before = turns[index - 1][1] if index else []
        calls = sum("functionCall" in p for p in before) if index and turns[index - 1][0] == "model" else 0
        if not calls:
            raise invalid("Please ensure that function response turn comes immediately after a function call turn.")
        if calls != answered:
            raise invalid("Please ensure that the number of function response parts is equal to the number of "
                          "function call parts of the function call turn.")


def _generation(config: Any, model: ModelRules) -> GenerateRequest:
    if not isinstance(config, dict):
        raise invalid("Invalid value at 'generation_config', must be an object")
    for key in config:
        if key not in _CONFIG_KEYS:
            raise _unknown(key, "generation_config")
        if key in model.refused and config[key] is not None:
            raise invalid(f"* GenerateContentRequest.generation_config.{_PROTO_NAMES.get(key, key)}: "
                          f"{model.name} does not support setting {_PROTO_NAMES.get(key, key)}.")
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise invalid(f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {max_tokens}")
    req = GenerateRequest("", max_tokens, 1, stop=_check_sampling(config))
    _read_format(config, req)
    _read_thinking(config.get("thinkingConfig"), model, req)
    return req


def _check_sampling(config: dict[str, Any]) -> list[str]:
    """The stop sequences, once the sampling parameters are checked."""
    stops = config.get("stopSequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid("Invalid value at 'generation_config.stop_sequences' (TYPE_STRING)")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise invalid(f"* GenerateContentRequest.generation_config.stop_sequences: at most "
                          f"{MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(stops)}.")
    for key, proto in (("topP", "top_p"), ("presencePenalty", "presence_penalty"),
                       ("frequencyPenalty", "frequency_penalty"), ("temperature", "temperature")):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise invalid(f"Invalid value at 'generation_config.{proto}' (TYPE_FLOAT), {str(value)[:40]}")
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid(f"Invalid value at 'generation_config.seed' (TYPE_INT32), {str(seed)[:40]}")
    return list(stops or [])


def _read_format(config: dict[str, Any], req: GenerateRequest) -> None:
    mime = config.get("responseMimeType")
    if mime is not None and mime not in _MIME_TYPES:
        raise invalid(f"* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are "
                      f"`text/plain`, `application/json`, and `text/x.enum`, got {str(mime)[:40]}.")
    schema = config.get("responseJsonSchema")
    if "responseSchema" in config and schema is not None:
        raise invalid("* GenerateContentRequest.generation_config.response_schema: response_schema and "
                      "response_json_schema cannot both be set.")
    if schema is not None:
        if mime != "application/json":
            raise invalid("* GenerateContentRequest.generation_config.response_mime_type: When using "
                          "response_json_schema, response_mime_type must be application/json.")
        if not isinstance(schema, dict):
            raise invalid("Invalid value at 'generation_config.response_json_schema', must be an object")
    req.json_mode = mime == "application/json"
    req.schema = schema


def _read_thinking(thinking: Any, model: ModelRules, req: GenerateRequest) -> None:
    if thinking is None:
        req.thinking_level = model.default_level
        return
    if not isinstance(thinking, dict):
        raise invalid("Invalid value at 'generation_config.thinking_config', must be an object")
    for key in thinking:
        if key not in ("thinkingBudget", "includeThoughts", "thinkingLevel"):
            raise _unknown(key, "generation_config.thinking_config")
    budget, level = thinking.get("thinkingBudget"), thinking.get("thinkingLevel")
    if budget is not None and level is not None:
        raise invalid("* GenerateContentRequest.generation_config.thinking_config: thinking_budget and "
                      "thinking_level cannot both be set.")
    req.include_thoughts = thinking.get("includeThoughts") is True
    if level is not None:
        req.thinking_level = _level(level, model)
    elif budget is not None:
        req.thinking_budget = _budget(budget, model)
    elif model.levels:
        req.thinking_level = model.default_level
    else:
        req.thinking_budget = -1


def _level(level: Any, model: ModelRules) -> str:
    """The thinkingLevel asked (the enum's name, in any case, as proto3 JSON reads it), if the model takes it."""
    name = level.upper() if isinstance(level, str) else None
    if name not in _LEVELS:
        raise invalid("Invalid value at 'generation_config.thinking_config.thinking_level' (type.googleapis.com/"
                      f"google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), \"{str(level)[:40]}\"")
    if not model.levels:
        raise invalid(f"* GenerateContentRequest.generation_config.thinking_config.thinking_level: thinking level "
                      f"is not supported by {model.name}; use thinking_budget.")
    if name not in model.levels:
        raise invalid(f"* GenerateContentRequest.generation_config.thinking_config.thinking_level: {name} is not "
                      f"supported by {model.name}; supported levels: {', '.join(model.levels)}.")
    return name


def _budget(budget: Any, model: ModelRules) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise invalid(f"Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
                      f"{str(budget)[:40]}")
    low, high = model.budget
    if budget == 0 and low > 0:
        raise invalid("Budget 0 is invalid. This model only works in thinking mode.")
    if budget != -1 and budget != 0 and not low <= budget <= high:
        raise invalid(f"The thinking budget {budget} is invalid. Please choose a value between {low} and "
                      f"{high}.")
    return budget


def _tools(tools: Any) -> list[Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("Invalid value at 'tools', must be a list")
    found: list[Tool] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"Invalid value at 'tools[{index}]', must be an object")
        for key in tool:
            if key not in ("functionDeclarations", "googleSearch", "codeExecution", "urlContext"):
                raise _unknown(key, f"tools[{index}]")
        declarations = tool.get("functionDeclarations") or []
        for number, declaration in enumerate(declarations if isinstance(declarations, list) else [None]):
            found.append(_declaration(declaration, f"tools[{index}].function_declarations[{number}]"))
    return found


def _declaration(declaration: Any, where: str) -> Tool:
    if not isinstance(declaration, dict):
        raise invalid(f"Invalid value at '{where}', must be an object")
    for key in declaration:
        if key not in ("name", "description", "parameters", "parametersJsonSchema", "response",
                       "responseJsonSchema", "behavior"):
            raise _unknown(key, where)
    name = declaration.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        raise invalid(f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or "
                      "an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with "
                      "a maximum length of 64.")
    if "parameters" in declaration and "parametersJsonSchema" in declaration:
        raise invalid(f"* GenerateContentRequest.{where}: parameters and parameters_json_schema cannot both be set.")
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters", {}))
    if not isinstance(schema, dict):
        raise invalid(f"Invalid value at '{where}.parameters_json_schema', must be an object")
    return Tool(name, schema)


def _tool_config(config: Any, tools: list[Tool]) -> tuple[str, list[str]]:
    if config is None:
        return "AUTO", []
    calling = config.get("functionCallingConfig", {}) if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        raise invalid("Invalid value at 'tool_config.function_calling_config', must be an object")
    mode = calling.get("mode", "AUTO")
    if mode not in _MODES:
        raise invalid(f"Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/"
                      f"google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{str(mode)[:40]}\"")
    allowed = calling.get("allowedFunctionNames") or []
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise invalid("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                      "only allowed when mode is ANY or VALIDATED.")
    names = {t.name for t in tools}
    for name in allowed:
        if name not in names:
            raise invalid(f"* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                          f"{str(name)[:64]} is not a declared function.")
    if mode != "AUTO" and not tools and mode != "NONE":
        raise invalid("* GenerateContentRequest.tool_config.function_calling_config: function calling config is "
                      "set without function_declarations.")
    return str(mode), [str(n) for n in allowed]
