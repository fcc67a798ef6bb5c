"""Small pieces on their own: the audit writer, change summaries, flag parsing, secret holders."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import orjson
import pytest

from cli.assistant.credentials import PendingSecret, check_key
from cli.assistant.diff import summarize
from cli.assistant.spec import ModelChoice, check_url, parse_default, parse_model
from cli.options import CommandRefused
from shared.audit import audit_event
from shared.files import FileWriteError


def test_audit_appends_one_private_json_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    audit_event(path, "provider_added", provider="openai", changes=["+providers.openai.kind"])
    audit_event(path, "client_rotated", client="editor", note="pasted sk-abcdefghijklmnop by mistake")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [e["event"] for e in lines] == ["provider_added", "client_rotated"]
    assert set(lines[0]) == {"ts", "event", "actor", "provider", "changes"}
    assert lines[0]["ts"].endswith("Z") and lines[0]["actor"]
    assert "sk-abcdefghijklmnop" not in path.read_text() and "[REDACTED]" in lines[1]["note"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_audit_refuses_reserved_names_and_reports_unwritable_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="actor"):
        audit_event(tmp_path / "a.jsonl", "x", actor="someone else")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileWriteError, match="cannot write the audit file"):
        audit_event(tmp_path / "file" / "audit.jsonl", "x")


def test_summary_masks_secrets_and_keys_models_by_id() -> None:
    before = {"$schema": "./x", "providers": {"o": {"kind": "openai", "secret": {"env": "A"},
                                                     "models": [{"id": "m1", "capabilities": ["chat"]}]}}}
    after = {"providers": {"o": {"kind": "openai", "secret": {"file": "/k"},
                                 "models": [{"id": "m0", "capabilities": ["embed"]},
                                            {"id": "m1", "capabilities": ["chat"]}]}}}
    assert summarize(before, after) == [
        "~ providers.o.secret: [secret] (env) -> [secret] (file)",
        '+ providers.o.models[m0].capabilities: ["embed"]',
    ]
    assert summarize(after, after) == []
    assert summarize(None, {"clients": {"c": {"token_sha256": "ab" * 32}}}) == ["+ clients.c.token_sha256: [secret]"]


def test_summary_shows_times_as_iso_8601() -> None:
    before = {"clients": {"c": {"created_at": 1765130400, "expires_at": None}}}
    after = {"clients": {"c": {"created_at": 1765130400, "expires_at": 1765134000}}}
    assert summarize(before, after) == ["~ clients.c.expires_at: null -> 2025-12-07T19:00:00Z"]
    assert summarize(None, before) == ["+ clients.c.created_at: 2025-12-07T18:00:00Z", "+ clients.c.expires_at: null"]


@pytest.mark.parametrize(("text", "expected"), [
    ("gpt-4o", ModelChoice("gpt-4o", ("chat", "chatStream"))),
    ("text-embedding-3-small", ModelChoice("text-embedding-3-small", ("embed",))),
    ("m:embed", ModelChoice("m", ("embed",))),
    ("m:chat,chatStream,chat", ModelChoice("m", ("chat", "chatStream"))),
    ("llama3:8b", ModelChoice("llama3:8b", ("chat", "chatStream"))),
    ("llama3:8b:chat", ModelChoice("llama3:8b", ("chat",))),
])
def test_parse_model(text: str, expected: ModelChoice) -> None:
    assert parse_model(text) == expected


@pytest.mark.parametrize("text", ["m:chat,talk", ":chat", "nope=x"])
def test_parse_model_and_default_refusals(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_default(text) if "=" in text else parse_model(text)


def test_parse_default() -> None:
    assert parse_default("chat=gpt-4o") == ("chat", "gpt-4o")
    assert parse_default("embed") == ("embed", None)


@pytest.mark.parametrize("url", ["localhost:1234", "http://", "http://h/a b", "http://h/?q=1", "file:///x", ""])
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(CommandRefused, match="invalid base URL"):
        check_url(url)


def test_check_url_trims_the_slash() -> None:
    assert check_url(" https://api.example.test/v1/ ") == "https://api.example.test/v1"


def test_a_pending_secret_never_shows_its_value() -> None:
    pending = PendingSecret(Path("/x/openai.key"), "sk-hidden-value-0123456789")
    assert "sk-hidden" not in repr(pending) + str(pending) + f"{pending}"


@pytest.mark.parametrize("value", ["", "   \n", "two words"])
def test_check_key_refuses_without_quoting(value: str) -> None:
    with pytest.raises(CommandRefused) as caught:
        check_key(value)
    assert "words" not in str(caught.value)
