"""Building Gemini's GenerateContentRequest from a ChatRequest.

A plain text chat becomes ``contents`` of text parts, ``systemInstruction`` and a small
``generationConfig``, as before issue #16. The rest is mapped only when the call carries it:

* images: ``inlineData{mimeType, data}`` parts;
* tools: one ``tools[{functionDeclarations}]`` entry whose declarations take the JSON
  Schema as ``parametersJsonSchema``; the choice becomes ``toolConfig.functionCallingConfig``
  (auto AUTO, none NONE, required ANY, a named tool ANY with ``allowedFunctionNames``);
* the assistant's earlier calls: ``functionCall{id, name, args}`` parts of a ``model`` turn.
  Gemini 3 models refuse a replayed call without its ``thoughtSignature``, which we do not
  keep (a ToolCall has no field for it): the first call of a turn carries Google's documented
  placeholder signature instead, which turns that check off (see ``SKIP_SIGNATURE``);
* tool results: ``functionResponse{id, name, response: {"output": text}}`` parts, the results
  that follow one model turn gathered into one ``user`` turn (the role the google-genai SDK
  sends them in);
* structured output: ``responseMimeType`` application/json, with ``responseJsonSchema``;
* reasoning: ``thinkingConfig{thinkingBudget, includeThoughts}``, or for the models that steer
  thinking by level (``KIND.thinking_levels``: Gemini 3) ``thinkingLevel`` for the call's effort
  in place of the budget (the API refuses both together);
* sampling: ``stopSequences``, ``topP``, ``seed``, ``presencePenalty``, ``frequencyPenalty``.
"""

from __future__ import annotations

from typing import Any

from shared.chat_parts import ImagePart, Reasoning, ToolChoice, ToolSpec
from shared.models import ChatRequest, Message
from workers.providers.gemini.kind import KIND

__all__ = ["SKIP_SIGNATURE", "generate_payload"]

# Google's documented stand-in for a thought signature a client no longer has ("thought
# signatures" guide, FAQ: history from another model or a client that dropped them).
SKIP_SIGNATURE = "skip_thought_signature_validator"
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


def generate_payload(request: ChatRequest) -> dict[str, Any]:
    """The request body for ``generateContent`` / ``streamGenerateContent``."""
    payload: dict[str, Any] = {"contents": _contents(request.messages)}
    system = "\n\n".join(m.text for m in request.messages if m.role == "system" and m.text)
    if system:
        payload["systemInstruction"] = {"parts": [{"text": system}]}  # no "system" role in contents
    if request.tools:
        payload["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if request.tool_choice is not None:
        payload["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    config = _generation_config(request)
    if config:
        payload["generationConfig"] = config
    return payload


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    results: dict[str, Any] | None = None  # the turn gathering consecutive tool results
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            if results is None:
                results = {"role": "user", "parts": []}
                contents.append(results)
            results["parts"].append(_function_response(m))  # parallel calls' results answer in one turn
            continue
        results = None
        role = "model" if m.role == "assistant" else "user"
        if isinstance(m.content, str) and not m.tool_calls:
            contents.append({"role": role, "parts": [{"text": m.content}]})  # the plain text path
        else:
            contents.append({"role": role, "parts": _parts(m)})
    return contents


def _parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            parts.append({"text": message.content})
    else:
        for p in message.content:
            parts.append({"inlineData": {"mimeType": p.mime_type, "data": p.data}} if isinstance(p, ImagePart)
                         else {"text": p.text})
    for index, call in enumerate(message.tool_calls or ()):
        part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name, "args": call.arguments}}
        if index == 0:
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts or [{"text": ""}]


def _function_response(message: Message) -> dict[str, Any]:
    response: dict[str, Any] = {"name": message.name or "", "response": {"output": message.text}}
    if message.tool_call_id:
        response = {"id": message.tool_call_id, **response}
    return {"functionResponse": response}


def _declaration(tool: ToolSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name, "parametersJsonSchema": tool.parameters}
    if tool.description:
        declaration["description"] = tool.description
    return declaration


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    sampling = request.sampling
    if sampling.stop is not None:
        config["stopSequences"] = sampling.stop
    if sampling.top_p is not None:
        config["topP"] = sampling.top_p
    if sampling.seed is not None:
        config["seed"] = sampling.seed
    if sampling.presence_penalty is not None:
        config["presencePenalty"] = sampling.presence_penalty
    if sampling.frequency_penalty is not None:
        config["frequencyPenalty"] = sampling.frequency_penalty
    fmt = request.response_format
    if fmt is not None:
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            config["responseJsonSchema"] = fmt.schema
    if request.reasoning is not None:
        config["thinkingConfig"] = _thinking(request.model, request.reasoning)
    return config


def _thinking(model: str, reasoning: Reasoning) -> dict[str, Any]:
    """thinkingConfig: the level for the call's effort where the model takes levels, else the budget."""
    thinking: dict[str, Any] = {"includeThoughts": reasoning.include_thoughts}
    level = KIND.thinking_level(model, reasoning.effort)
    if level is not None:
        thinking["thinkingLevel"] = level.upper()  # the enum's name, as the google-genai SDK sends it
    else:
        thinking["thinkingBudget"] = reasoning.budget_tokens
    return thinking
