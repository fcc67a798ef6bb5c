"""Ollama's errors as taxonomy errors.

Ollama answers every failure with ``{"error": "text"}`` and an HTTP status, or, once a
stream has started, with a last NDJSON line ``{"error": "text"}`` under the 200 it already
sent. The text is all there is (no type or code), so status and a few known phrasings decide:

* 404 ``model "x" not found, try pulling it first``: the model is not pulled -> ``not_found``
  whose message says ``ollama pull x``. A 404 without that phrase is an unknown endpoint
  (gin's plain ``404 page not found``: a base URL pointing at something else).
* 400 ``"x" does not support chat|tools|thinking|...`` -> ``unsupported``; other 400s ->
  ``invalid_request``.
* 503 ``server busy, please try again.  maximum pending requests exceeded`` (its request
  queue, ``OLLAMA_MAX_QUEUE``, is full) -> ``overloaded``; 500 -> ``provider_error``.
* 401/403/429 come from a reverse proxy in front of Ollama: the generic status map, with
  its ``Retry-After``.
"""

from __future__ import annotations

import re

from shared import errors
from workers.providers.http_base import (
    ErrorClass,
    Scrub,
    build_error,
    openai_error_class,
    parse_openai_error_body,
    provider_detail,
)
from workers.retry_hints import HeadersLike, retry_after_s

__all__ = ["map_ollama_error", "ollama_error_class", "pull_hint"]

# model "x" not found, try pulling it first  |  model 'x' not found  (quoting differs by version)
_NOT_PULLED = re.compile(r"""\bmodel\s+["']?(?P<model>[^"'\s]{1,200})["']?\s+not found""", re.IGNORECASE)
_UNSUPPORTED = re.compile(r"\bdoes not support\b", re.IGNORECASE)
_BUSY = re.compile(r"\bserver busy\b|maximum pending requests", re.IGNORECASE)
_CONTEXT = re.compile(r"context (?:window|length|size)|exceeds? (?:the )?(?:model'?s? )?context", re.IGNORECASE)


def ollama_error_class(status: int, message: str) -> ErrorClass:
    """The class for one Ollama error: its status, refined by the few phrasings it uses."""
    if _NOT_PULLED.search(message) and status in (404, 200):
        return errors.NotFound
    if _UNSUPPORTED.search(message) and status in (400, 200):
        return errors.Unsupported
    if _BUSY.search(message):
        return errors.Overloaded
    if status < 400:
        return errors.ProviderError  # an in-stream error: the runner failed mid-answer
    cls = openai_error_class(status, "", "")
    if cls is errors.InvalidRequest and _CONTEXT.search(message):
        return errors.ContextLengthExceeded
    return cls


def pull_hint(message: str) -> str | None:
    """``ollama pull x`` for a model-not-found message, else None."""
    match = _NOT_PULLED.search(message)
    return f"ollama pull {match.group('model')}" if match else None


def map_ollama_error(
    status: int, headers: HeadersLike, body: bytes, provider: str, scrub: Scrub
) -> errors.LLMCallerError:
    """One Ollama failure (HTTP error or in-stream error line) as one taxonomy error."""
    message = parse_openai_error_body(body).message  # a bare {"error": "text"} fits the same parser
    cls = ollama_error_class(status, message)
    detail = provider_detail(message, scrub)
    hint = pull_hint(message) if cls is errors.NotFound else None
    if hint is not None:
        where = f"HTTP {status}" if status >= 300 else "reported in the response body"
        text = f"{provider} does not have this model: pull it with `{scrub(hint)}` ({where}: {detail})"
        return errors.NotFound(text, provider=provider)
    if cls is errors.Unsupported:
        return errors.Unsupported(f"{provider}'s model cannot do this: {detail}", provider=provider)
    if cls is errors.NotFound:
        detail = detail or "no such endpoint"
        return errors.NotFound(
            f"{provider} does not offer this endpoint ({detail}); check that the base URL is an Ollama "
            "server's root, e.g. http://localhost:11434", provider=provider)
    return build_error(cls, provider, status, detail, retry_after=retry_after_s(headers))
