"""The chat tools' input beyond plain text: content parts, tools, structured output, reasoning.

Validated here, once, at the edge (``gateway.tool_schemas.ChatInput`` uses these models);
``gateway.chat_request`` turns them into the link's ``shared.chat_parts`` shapes. Every
refusal names the field and never echoes the caller's data.

Images arrive inline only: MCP image content (``data`` + ``mimeType``) or a ``data:`` URL
in ``url``. The gateway fetches nothing, so a remote URL is refused. Each image's bytes are
checked: valid base64, within the size limits, and really of the declared type (its magic
bytes are read); a PNG declared as JPEG is refused naming what it is, since providers reject
such a mismatch and a silent correction would hide the caller's bug.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs in the venv
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, model_validator

from gateway.schema_refs import ref_problem

__all__ = [
    "IMAGE_TYPES",
    "MAX_IMAGES",
    "MAX_IMAGES_TOTAL_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_STOP",
    "MAX_TOOLS",
    "ImagePartIn",
    "JsonObjectFormat",
    "JsonSchemaFormat",
    "NamedToolChoice",
    "PartIn",
    "ReasoningIn",
    "ResponseFormatIn",
    "TextPartIn",
    "ToolCallIn",
    "ToolIn",
    "check_json_schema",
]

# Images per call and their decoded sizes: base64 makes 2.5 MiB of images ~3.4 MiB of
# JSON, under the HTTP body limit (4 MiB), so a caller meets these clear limits first.
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGES_TOTAL_BYTES = 5 * 512 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_TOOLS = 128  # OpenAI's limit, the strictest of the providers
MAX_STOP = 4  # OpenAI takes at most 4 stop sequences, the strictest of the providers
# The base64 strings' bound, twice what the size limit needs: a little too large an image
# gets the decoded-size message (clearer), a far too large one is refused unread.
_MAX_B64 = (MAX_IMAGE_BYTES + 2) // 3 * 4 * 2
_DATA_URL_PREFIX = "data:"

ImageType = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
# Function names every provider accepts: Gemini wants a letter or underscore first, OpenAI
# at most 64 of letters, digits, underscores and dashes.
ToolName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
                                description="Function name: a letter or _ first, then letters, digits, _ or -")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPartIn(_In):
    type: Literal["text"]
    text: Annotated[str, Field(max_length=1_000_000)]


class ImagePartIn(_In):
    """An image: ``data`` (base64) with ``mimeType`` (MCP image content), or ``url`` (a data: URL)."""

    type: Literal["image"]
    data: Annotated[str | None, Field(max_length=_MAX_B64, description="Base64 image bytes (with mimeType)")] = None
    mimeType: ImageType | None = None
    url: Annotated[str | None, Field(max_length=_MAX_B64 + 64, description=(
        "A data: URL (data:image/png;base64,...); remote URLs are refused: the gateway does not fetch"))] = None
    _size: int = PrivateAttr(0)

    @model_validator(mode="after")
    def _decoded(self) -> ImagePartIn:
        if self.url is not None:
            if self.data is not None or self.mimeType is not None:
                raise ValueError('give either "url" or "data" with "mimeType", not both')
            self.mimeType, self.data = _split_data_url(self.url)
            self.url = None
        elif self.data is None or self.mimeType is None:
            raise ValueError('an image needs "data" (base64) and "mimeType", or a data: "url"')
        self._size = _check_image(self.data, self.mimeType)
        return self

    @property
    def size(self) -> int:
        """Decoded bytes."""
        return self._size


def _split_data_url(url: str) -> tuple[ImageType, str]:
    if not url.startswith(_DATA_URL_PREFIX):
        raise ValueError("only data: URLs are accepted (data:image/png;base64,...); "
                         "the gateway does not fetch remote images: send the bytes")
    header, comma, data = url[len(_DATA_URL_PREFIX):].partition(",")
    mime, _, encoding = header.partition(";")
    if not comma or encoding != "base64":
        raise ValueError("a data: URL must be data:<image type>;base64,<data>")
    if mime not in IMAGE_TYPES:
        raise ValueError(f"image type not accepted; accepted: {', '.join(IMAGE_TYPES)}")
    return mime, data  # type: ignore[return-value]  # checked against IMAGE_TYPES just above


def _check_image(data: str, declared: str) -> int:
    """The decoded size of valid base64 ``data`` really of type ``declared``, else ValueError."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("image data is not valid base64") from None
    if not raw:
        raise ValueError("image data is empty")
    if len(raw) > MAX_IMAGE_BYTES:
        raise ValueError(f"image too large: {len(raw)} bytes, the limit is {MAX_IMAGE_BYTES} per image")
    actual = sniff_image_type(raw)
    if actual is None:
        raise ValueError(f"image data is not a PNG, JPEG, GIF or WebP image (declared {declared})")
    if actual != declared:
        raise ValueError(f"image data is {actual} but declared {declared}; send mimeType {actual}")
    return len(raw)


def sniff_image_type(raw: bytes) -> str | None:
    """The image type ``raw`` starts like (its magic bytes), or None."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


class ToolCallIn(_In):
    """A call an earlier assistant message made (sent back with the conversation)."""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: ToolName
    arguments: dict[str, Any] = Field(default_factory=dict, description="The call's arguments, as an object")


def check_json_schema(schema: dict[str, Any], what: str) -> None:
    """ValueError naming ``what`` unless ``schema`` is a valid JSON Schema (draft 2020-12)
    whose references all resolve inside it (``gateway.schema_refs``)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        # The metaschema rule that failed, not jsonschema's message: that quotes the caller's schema.
        raise ValueError(f"{what} is not a valid JSON Schema (draft 2020-12): "
                         f"{f'{where!r} breaks' if where else 'it breaks'} the {exc.validator!r} rule") from None
    problem = ref_problem(schema)
    if problem is not None:
        raise ValueError(f"{what}: {problem}")


class ToolIn(_In):
    """A function the model may call."""

    name: ToolName
    description: Annotated[str | None, Field(max_length=4096)] = None
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description='JSON Schema of the arguments; an object schema ({"type": "object", ...})')

    @model_validator(mode="after")
    def _valid_schema(self) -> ToolIn:
        check_json_schema(self.parameters, f"the parameters of tool {self.name!r}")
        if self.parameters.get("type") != "object":
            raise ValueError(f'the parameters of tool {self.name!r} must be an object schema ("type": "object")')
        return self


class NamedToolChoice(_In):
    name: ToolName = Field(description="The tool the model must call (one of `tools`)")


class JsonSchemaFormat(_In):
    """The reply must be JSON matching ``schema``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema", description="The JSON Schema the reply must match")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "response"
    strict: bool = Field(True, description="Ask the provider to enforce the schema where it can")

    @model_validator(mode="after")
    def _valid_schema(self) -> JsonSchemaFormat:
        check_json_schema(self.json_schema, "response_format.schema")
        return self


class JsonObjectFormat(_In):
    """The reply must be a JSON object (any)."""

    type: Literal["json_object"]


class ReasoningIn(_In):
    """How hard a reasoning model thinks: an effort level and/or a thinking-token budget."""

    effort: Literal["low", "medium", "high"] | None = None
    budget_tokens: Annotated[int | None, Field(ge=1, le=128_000)] = None
    include_thoughts: bool = Field(False, description="Return the thinking text where the provider gives it")

    @model_validator(mode="after")
    def _something(self) -> ReasoningIn:
        if self.effort is None and self.budget_tokens is None:
            raise ValueError('give "effort" (low, medium, high) or "budget_tokens", or both')
        return self


def _tag(value: Any) -> str | None:
    """The ``type`` of a part or format, raw or validated, for the discriminated unions below."""
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


# Unions picked by "type" (a callable discriminator: the schema is a plain oneOf, without the
# OpenAPI "discriminator" keyword strict clients do not know), so an error names one branch.
PartIn = Annotated[
    Annotated[TextPartIn, Tag("text")] | Annotated[ImagePartIn, Tag("image")],
    Discriminator(_tag, custom_error_type="part_type",
                  custom_error_message='a part is {"type": "text", "text": ...} or {"type": "image", ...}'),
]
ResponseFormatIn = Annotated[
    Annotated[JsonSchemaFormat, Tag("json_schema")] | Annotated[JsonObjectFormat, Tag("json_object")],
    Discriminator(_tag, custom_error_type="format_type",
                  custom_error_message='the type is "json_schema" (with "schema") or "json_object"'),
]
