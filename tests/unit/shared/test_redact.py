"""shared.redact: a known key in any spelling, masked; ordinary text left alone."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from emulators.faults import KEY_FORMS, key_in_form
from shared import redact as redact_module
from shared.audit import audit_event
from shared.logs import JsonFormatter
from shared.redact import MASK, SecretScrubber, public_prefix, redact, register_secret

KEY = "sk-proj-Xq7-Zr2_a9LmN0pQ4sT6vW8yB1cD3eF5"


def _runs(key: str) -> list[str]:
    """Runs of 8 that reach past the public prefix, lower-cased (what must never show)."""
    start = len(public_prefix(key))
    return [key[i:i + 8].lower() for i in range(len(key) - 7) if i + 8 > start]


def _shows_a_run(key: str, text: str) -> bool:
    folded = "".join(text.split()).lower()
    return any(run in folded for run in _runs(key))


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    saved = redact_module._REGISTERED
    redact_module._REGISTERED = SecretScrubber()
    yield
    redact_module._REGISTERED = saved


@pytest.mark.parametrize("form", KEY_FORMS)
@pytest.mark.parametrize("where", ["Incorrect API key provided: {}.", "{}", "x-api-key={}&retry=1", "«{}»"])
def test_every_spelling_of_the_key_is_masked(form: str, where: str) -> None:
    spelt = key_in_form(KEY, form)
    out = SecretScrubber([KEY]).scrub(where.format(spelt))
    assert MASK in out, out
    assert not _shows_a_run(KEY, out), out
    folded_spelling = "".join(spelt.split()).lower()
    assert not any(folded_spelling[i:i + 8] in "".join(out.split()).lower()  # nor any run of the encoding
                   for i in range(len(folded_spelling) - 7)), out


def test_surrounding_text_survives() -> None:
    text = f"openai rejected the API key (HTTP 401): Incorrect API key provided: {KEY.upper()}. See the docs."
    assert SecretScrubber([KEY]).scrub(text) == (
        f"openai rejected the API key (HTTP 401): Incorrect API key provided: {MASK}. See the docs.")


def test_text_without_the_key_is_unchanged_even_with_the_public_prefix() -> None:
    scrubber = SecretScrubber(["sk-emu-anthropic-0123456789abcdef01234567"])
    text = "anthropic is overloaded; keys look like sk-emu-anthropic-... (see %20 docs)"
    assert scrubber.scrub(text) == text


@pytest.mark.parametrize("secret", ["", "short", None])
def test_short_or_missing_secrets_mask_nothing(secret: str | None) -> None:
    register_secret(secret)
    assert not SecretScrubber([secret or ""])
    assert redact("plain words and a shortish value") == "plain words and a shortish value"


def test_a_registered_secret_is_masked_by_redact_logs_and_audit(tmp_path: Path) -> None:
    register_secret(KEY)
    echoed = key_in_form(KEY, "no_prefix").upper()
    assert redact(f"provider said {echoed}") == f"provider said {MASK}"
    record = logging.LogRecord("w", logging.INFO, "", 0, "event %s", (echoed,), None)
    record.detail = key_in_form(KEY, "url_all")
    line = JsonFormatter("worker:openai").format(record)
    assert not _shows_a_run(KEY, line) and "%" not in orjson.loads(line)["detail"]
    audit_event(tmp_path / "audit.jsonl", "probe", note=key_in_form(KEY, "spaced"))
    assert not _shows_a_run(KEY, (tmp_path / "audit.jsonl").read_text())


def test_pattern_layer_still_masks_unknown_credentials() -> None:
    assert MASK in redact("Bearer abc.def.ghijklmnop") and MASK in redact("token llmc_AAAAAAAAAAAAAAAAAAAA")


def test_pattern_layer_masks_google_keys_and_their_header() -> None:
    google_key = "AIzaSyD" + "x" * 32
    assert redact(f"API key not valid: {google_key}") == f"API key not valid: {MASK}"
    assert google_key[8:] not in redact("x-goog-api-key: abcdefgh12345678")
    assert MASK in redact("x-goog-api-key: abcdefgh12345678")


def test_no_secret_known_costs_only_the_pattern_pass() -> None:
    # The gateway registers no key: its log lines must come out exactly as before.
    stream = io.StringIO()
    text = "tool_call chat openai gpt-4o-mini ok 12.5 ms " * 4
    stream.write(redact(text))
    assert stream.getvalue() == text
