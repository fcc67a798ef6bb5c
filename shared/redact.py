"""One redaction layer for text that may carry a secret: provider error bodies, log fields.

Known secret values are replaced exactly; anything shaped like a provider key or a
bearer credential is masked too, so a key we were never told about (a provider
echoing another key, a user pasting one) still does not travel further.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "redact"]

MASK = "[REDACTED]"

_PATTERNS = re.compile(
    r"(?:"
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys (sk-..., sk-ant-...)
    r"|llmcs?_[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-]+)?"  # our client (llmc_) and session (llmcs_) tokens
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization header values
    r"|(?i:x-api-key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{8,}"
    r")"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        # Very short values would mask ordinary words; real keys are long.
        if secret and len(secret) >= 8:
            text = text.replace(secret, MASK)
    return _PATTERNS.sub(MASK, text)
