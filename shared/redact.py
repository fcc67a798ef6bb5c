"""One redaction layer for text that may carry a secret: provider error bodies, log fields.

Two layers:

* **Known secrets, in any of the forms an echo takes.** A provider that quotes the key
  back does not always quote it whole: without its prefix, only its tail, upper-cased,
  with a space or line break inside, URL-encoded, base64-encoded (``Basic`` auth), or in
  its own masked form (``sk-proj-****...abcd``). So a known secret is not searched for
  literally: every 8-character run of it counts (except runs wholly inside its public
  format prefix, ``sk-proj-``, ``sk-ant-api03-``: those are in the providers' docs and
  in ordinary text). ``SecretScrubber`` precomputes the set of 8-character windows of
  each secret, of its base64 encodings at the three byte alignments (standard and
  URL-safe alphabets) and of its hex form, all lower-cased. The text is normalised the
  same way (percent-escapes decoded, case folded, whitespace and zero-width characters
  dropped) and every 8-character window of it is looked up in that set: one pass, one
  set lookup per character, whatever the number of forms. Where a window hits, the
  whole token around it (letters, digits and ``-_+/=%*~``, and across the dots of a
  masked form) is masked in the original text, so the leftovers of a masked or encoded
  form go too.
* **Anything shaped like a credential**, known or not: provider keys (``sk-...``), our
  client and session tokens (``llmc_``, ``llmcs_``), bearer values and ``x-api-key``
  values, so a key we were never told about (a provider echoing another key, a user
  pasting one) still does not travel further.

Where it runs: a worker registers its provider key once at start
(``register_secret``); from then on ``redact`` (every log field, every audit field) and
the worker's error path (``workers.runtime`` scrubs each error before it leaves the
process, so the gateway, the client, metrics and traces only ever see scrubbed text)
know the key. Adapters pass the key explicitly (``redact(text, (key,))``). Processes
that hold no provider key (the gateway, the CLI) pay only for the pattern layer: the
window scan runs only when a secret is known, and then only over text that is about to
leave (error messages and log fields, not model output).
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable

__all__ = ["MASK", "WINDOW", "SecretScrubber", "public_prefix", "redact", "register_secret"]

MASK = "[REDACTED]"
# The shortest run of a secret that counts as a leak; also the shortest secret handled
# (shorter values would mask ordinary words; real keys are long).
WINDOW = 8

_PATTERNS = re.compile(
    r"(?:"
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys (sk-..., sk-ant-...)
    r"|llmcs?_[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-]+)?"  # our client (llmc_) and session (llmcs_) tokens
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization header values
    r"|AIza[A-Za-z0-9_\-]{30,}"  # Google API keys (Gemini)
    r"|(?i:x-(?:goog-)?api-key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{8,}"
    r")"
)
# Dropped before matching: an echo with a space, a line break or an invisible character inside.
_IGNORED = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
_PREFIX = re.compile(r"(?:[a-z][a-z0-9]{0,9}[-_]){1,3}")  # sk-proj-, sk-ant-api03-, sk-svcacct-
# The dots inside a provider's masked form, with the token part on their far side.
_ELLIPSIS_AFTER = re.compile(r"(?:\.{2,}|…)[A-Za-z0-9]")
_ELLIPSIS_BEFORE = re.compile(r"[A-Za-z0-9](?:\.{2,}|…)$")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/=%*~")


def public_prefix(secret: str) -> str:
    """The format marker a key starts with (``sk-proj-``, ``sk-ant-api03-``): public, named in docs.

    Its runs are not secret and appear in ordinary text about the provider (a sandbox
    key ``sk-emu-anthropic-...`` holds the provider's name), so only runs that reach past
    it count. At least ``WINDOW`` characters always count as secret.
    """
    match = _PREFIX.match(secret)
    prefix = match.group(0) if match else ""
    return prefix if len(secret) - len(prefix) >= WINDOW else ""


def _spellings(secret: str) -> list[str]:
    """The secret as an echo may spell it, lower-cased and without its public prefix's own runs.

    The secret itself (its runs that reach past the public prefix), its hex form, and
    base64 (standard and URL-safe) at each of the three byte alignments.
    """
    raw = secret.encode("utf-8")
    skip = max(len(public_prefix(secret)) - WINDOW + 1, 0)
    forms = [secret[skip:], raw.hex()]
    for start in range(3):
        whole = raw[start:]
        whole = whole[: len(whole) - len(whole) % 3]  # the last partial group depends on what follows
        if len(whole) >= 6:
            forms.append(base64.b64encode(whole).decode("ascii"))
            forms.append(base64.urlsafe_b64encode(whole).decode("ascii"))
    return [form.lower() for form in forms]


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _fold(text: str) -> str:
    """Lower-cased, percent-escapes decoded, whitespace and invisible characters dropped."""
    if "%" in text:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return "".join(text.split()).translate(_INVISIBLE).lower()


class SecretScrubber:
    """Masks every 8-character run of the given secrets (in the forms above) in a text."""

    __slots__ = ("_windows",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._windows: frozenset[str] = frozenset()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        windows = set(self._windows)
        for secret in secrets:
            if secret and len(secret) >= WINDOW:
                for form in _spellings(secret):
                    for spelt in {_IGNORED.sub("", form), _fold(form)}:  # as the text will be folded
                        windows.update(spelt[i:i + WINDOW] for i in range(len(spelt) - WINDOW + 1))
        self._windows = frozenset(windows)

    def __bool__(self) -> bool:
        return bool(self._windows)

    def leaks(self, text: str) -> bool:
        """Whether ``text`` holds any run of a known secret (the cheap check, no masking)."""
        folded, windows = _fold(text), self._windows
        return any(folded[i:i + WINDOW] in windows for i in range(len(folded) - WINDOW + 1))

    def scrub(self, text: str) -> str:
        if not self._windows or len(text) < WINDOW or not self.leaks(text):
            return text
        spans = self._hits(text)
        out, last = [], 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(MASK)
            last = end
        out.append(text[last:])
        return "".join(out)

    def _hits(self, text: str) -> list[tuple[int, int]]:
        """The spans of ``text`` to mask: each hit widened to its whole token, overlaps merged."""
        chars, origin = _folded_with_origin(text)
        spans: list[tuple[int, int]] = []
        for i in range(len(chars) - WINDOW + 1):
            if "".join(chars[i:i + WINDOW]) in self._windows:
                start, end = _widen(text, origin[i][0], origin[i + WINDOW - 1][1])
                if spans and start <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
                else:
                    spans.append((start, end))
        return spans


def _folded_with_origin(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """``_fold`` one character at a time, remembering which span of ``text`` each came from."""
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    i, size = 0, len(text)
    while i < size:
        char, step = text[i], 1
        if char == "%" and _HEX_PAIR.fullmatch(text, i + 1, i + 3):
            char, step = chr(int(text[i + 1:i + 3], 16)), 3
        if not _IGNORED.fullmatch(char):
            for folded in char.lower():
                chars.append(folded)
                origin.append((i, i + step))
        i += step
    return chars, origin


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a hit to its whole token, across the dots of a masked form (``sk-proj-abc...wxyz``)."""
    while True:
        while start > 0 and text[start - 1] in _TOKEN_CHARS:
            start -= 1
        while end < len(text) and text[end] in _TOKEN_CHARS:
            end += 1
        left = _ELLIPSIS_BEFORE.search(text, 0, start)
        right = _ELLIPSIS_AFTER.match(text, end)
        if left is None and right is None:
            return start, end
        start = left.start() if left is not None else start
        end = right.end() if right is not None else end


# The secrets this process holds (a worker's provider key): every redact() call knows them.
_REGISTERED = SecretScrubber()


def register_secret(secret: str | None) -> None:
    """Make ``redact`` (and so every log and audit line of this process) mask ``secret`` in any form."""
    if secret:
        _REGISTERED.add((secret,))


@functools.lru_cache(maxsize=8)
def _scrubber_for(secrets: tuple[str, ...]) -> SecretScrubber:
    return SecretScrubber(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the registered secrets, ``secrets``, or anything credential-shaped."""
    if secrets:  # the common call (a log field in the gateway) passes none: skip the tuple
        extra = tuple(s for s in secrets if s)
        if extra:
            text = _scrubber_for(extra).scrub(text)
    if _REGISTERED:
        text = _REGISTERED.scrub(text)
    return _PATTERNS.sub(MASK, text)
