"""A thread turn's messages as the store keeps them, and back; and their token estimate.

A turn is stored as JSON (``TurnRow.messages``): the messages in the contract's neutral
wire form (``shared.models.Message.to_wire``), so any adapter maps them on a later turn,
whichever provider answered this one. Images are not inlined: each is kept once per
thread as a blob under its content digest (``Store.put_blob``) and the turn holds an
``image_ref`` part naming it; the history sent rebuilds the image part from the blob.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from shared import errors
from shared.chat_parts import ImagePart, Part, TextPart
from shared.models import Message

__all__ = ["IMAGE_TOKENS", "decode_turn", "encode_turn", "estimate_tokens"]

# What an image counts as in the estimate (a provider's own count varies with its size).
IMAGE_TOKENS = 1000
# Characters per token in the estimate: the usual rule of thumb for English text.
_CHARS_PER_TOKEN = 4
_IMAGE_REF = "image_ref"

PutBlob = Callable[[str, str, bytes], Awaitable[None]]  # (digest, mime, data)
GetBlob = Callable[[str], Awaitable[tuple[str, bytes] | None]]  # digest -> (mime, data)


async def encode_turn(messages: list[Message], put_blob: PutBlob) -> bytes:
    """The turn's JSON; each image's bytes go to ``put_blob`` and the JSON names their digest."""
    wire = []
    for message in messages:
        data = message.to_wire()
        if isinstance(message.content, list):
            data["content"] = [await _encode_part(p, put_blob) for p in message.content]
        wire.append(data)
    return orjson.dumps(wire)


async def _encode_part(part: Part, put_blob: PutBlob) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return part.to_wire()
    raw = base64.b64decode(part.data)
    digest = hashlib.sha256(raw).hexdigest()
    await put_blob(digest, part.mime_type, raw)
    return {"type": _IMAGE_REF, "digest": digest, "mime_type": part.mime_type}


async def decode_turn(data: bytes, get_blob: GetBlob) -> list[Message]:
    """The turn's messages with their images rebuilt from the blobs they reference."""
    messages = []
    for item in orjson.loads(data):
        content = item["content"]
        if isinstance(content, list):
            item = {**item, "content": [await _decode_part(p, get_blob) for p in content]}
        messages.append(Message.from_wire(item))
    return messages


async def _decode_part(part: dict[str, Any], get_blob: GetBlob) -> dict[str, Any]:
    if part["type"] != _IMAGE_REF:
        return part
    blob = await get_blob(part["digest"])
    if blob is None:  # the store lost it: say so rather than send a history with a hole
        raise errors.InternalError("an image of this thread is missing from the gateway's store")
    mime, raw = blob
    return {"type": "image", "data": base64.b64encode(raw).decode(), "mime_type": mime}


def estimate_tokens(messages: list[Message]) -> int:
    """A rough count: text characters / 4 (rounded up), each image ``IMAGE_TOKENS``, tool calls' JSON."""
    chars, images = 0, 0
    for message in messages:
        if isinstance(message.content, str):
            chars += len(message.content)
        else:
            chars += sum(len(p.text) for p in message.content if isinstance(p, TextPart))
            images += sum(1 for p in message.content if isinstance(p, ImagePart))
        for call in message.tool_calls or ():
            chars += len(call.name) + len(orjson.dumps(call.arguments))
    return math.ceil(chars / _CHARS_PER_TOKEN) + images * IMAGE_TOKENS
