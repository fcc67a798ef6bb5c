"""Wire frames, the error taxonomy's payload round trip, and redaction."""

from __future__ import annotations

import pytest

from shared import errors
from shared.protocol import FRAME_COUNT, PROTOCOL_VERSION, Command, ProtocolError, decode, encode, pack, unpack
from shared.redact import MASK, redact


def test_frames_round_trip() -> None:
    wire = encode(Command.CHUNK, "abc123", {"text": "hé"})
    assert len(wire) == 1  # one packed ZeroMQ frame: one send per message
    frames = unpack(wire)
    assert frames[0] == PROTOCOL_VERSION and len(frames) == FRAME_COUNT and frames[-1] == b""
    assert pack(frames) == wire[0]
    frame = decode(wire)
    assert decode(frames) == frame
    assert (frame.command, frame.request_id, frame.payload) == (Command.CHUNK, "abc123", {"text": "hé"})
    assert decode(encode(Command.HEARTBEAT)).payload is None


def test_truncated_or_multi_frame_wire_is_a_protocol_error() -> None:
    wire = encode(Command.CHUNK, "abc123", {"text": "x"})[0]
    for bad in ([wire[:6]], [wire[:9]], [wire, wire]):
        with pytest.raises(ProtocolError):
            unpack(bad)


@pytest.mark.parametrize("frames", [
    [PROTOCOL_VERSION, b"\x05", b"id", b""],
    [b"LLMC1", b"\x05", b"id", b""],  # a v1 peer: four frames
    [b"LLMC9", b"\x05", b"id", b"", b""],
    [b"LLMC1", b"\x05", b"id", b"", b""],
    [PROTOCOL_VERSION, b"\xff", b"id", b"", b""],
    [PROTOCOL_VERSION, b"\x05", b"\xff\xfe", b"", b""],
    [PROTOCOL_VERSION, b"\x05", b"id", b"{not json", b""],
])
def test_bad_frames_are_protocol_errors(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode(frames)


def test_every_error_type_round_trips_through_its_payload() -> None:
    for type_name in errors.ERROR_TYPES:
        cls = errors.error_from_payload({"type": type_name, "message": "m"}).__class__
        original = cls("boom", provider="p", request_id="r", retry_after_s=1.5, partial_text="part")
        rebuilt = errors.error_from_payload(original.to_payload())
        assert type(rebuilt) is cls and rebuilt.to_payload() == original.to_payload()
    assert isinstance(errors.error_from_payload({"type": "weird"}), errors.InternalError)


def test_retryable_follows_the_hierarchy() -> None:
    assert errors.RateLimited("x").retryable and errors.WorkerLost("x").retryable
    assert not errors.QuotaExhausted("x").retryable and not errors.AuthError("x").retryable
    assert set(errors.RateLimited("x").to_payload()) == {
        "type", "message", "retryable", "retry_after_s", "provider", "request_id"}


def test_redaction_masks_known_and_key_shaped_secrets() -> None:
    assert redact("key is hunter2hunter2", ["hunter2hunter2"]) == f"key is {MASK}"
    assert MASK in redact("Incorrect API key provided: sk-proj-abcdefghijklmnop")
    assert MASK in redact("Authorization: Bearer abc.def.ghijklmnop")
    assert MASK in redact("token llmc_AAAAAAAAAAAAAAAAAAAA")
    assert redact("nothing secret here") == "nothing secret here"
