"""The typed worker-link messages: round trips, unchanged wire bytes, refusals, dispatch by op."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.worker_state import WorkerState
from shared import errors, protocol
from shared.config import ProviderConfig
from shared.messages import Health, Op, Ready, WorkRequest, parse_op
from shared.models import ModelInfo
from shared.protocol import Command, ProtocolError, decode, encode
from shared.settings import Settings
from tests.unit.link_fakes import LINK_KEY
from workers.runtime import WorkerRuntime

_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _settings(tmp_path: Path) -> Settings:
    return Settings(config_dir=tmp_path, run_dir=tmp_path, log_dir=tmp_path / "logs")


@pytest.mark.parametrize("op", list(Op))
def test_a_request_round_trips_and_its_wire_bytes_are_the_untyped_ones(op: Op) -> None:
    work = WorkRequest(op, _REQUEST, 12.5)
    wire = encode(Command.REQUEST, "r1", work.to_wire())
    assert wire == encode(Command.REQUEST, "r1", {"op": op.value, "request": _REQUEST, "timeout_s": 12.5})
    back = WorkRequest.from_wire(decode(wire).payload)
    assert back == work and back.op is op


def test_a_request_in_an_unusual_but_valid_shape_reads_like_main_read_it() -> None:
    assert WorkRequest.from_wire({"op": "embed", "timeout_s": 5}) == WorkRequest(Op.EMBED, {}, 5.0)
    assert WorkRequest.from_wire({"op": "models", "request": None}) == WorkRequest(Op.MODELS, {}, 60.0)


def test_the_request_dict_is_carried_not_copied() -> None:
    assert WorkRequest.from_wire({"op": "chat", "request": _REQUEST}).request is _REQUEST
    assert WorkRequest(Op.CHAT, _REQUEST).to_wire()["request"] is _REQUEST


@pytest.mark.parametrize("payload", [
    {"op": "dance", "request": {}},
    {"op": None},
    {"request": {}},
    {"op": ["chat"]},
])
def test_an_unknown_op_is_refused_naming_it_and_the_known_ones(payload: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        WorkRequest.from_wire(payload)
    assert "unknown operation" in caught.value.message
    assert repr(str(payload.get("op"))[:40]) in caught.value.message
    assert all(op.value in caught.value.message for op in Op)


@pytest.mark.parametrize("payload", [None, "chat", ["chat"], {"op": "chat", "request": "x"},
                                     {"op": "chat", "timeout_s": "soon"}, {"op": "chat", "timeout_s": True}])
def test_a_malformed_request_is_an_invalid_request(payload: object) -> None:
    with pytest.raises(errors.InvalidRequest):
        WorkRequest.from_wire(payload)


def test_parse_op_accepts_exactly_the_enum_values() -> None:
    assert [parse_op(op.value) for op in Op] == list(Op)
    with pytest.raises(errors.InvalidRequest):
        parse_op("CHAT")


def _health() -> Health:
    return Health(status="degraded", reason="lab is unreachable at http://127.0.0.1:1", last_error="connection",
                  inflight=2, degraded_since="2026-12-07T18:00:00Z", circuit={"state": "open", "failures": 3},
                  counters={"attempts": 4, "retries": 1},
                  models=[ModelInfo(id="m1", capabilities=["chat", "chatStream"], loaded=True)])


def test_health_round_trips_through_the_wire_with_degraded() -> None:
    health = _health()
    assert Health.from_wire(decode(encode(Command.HEARTBEAT, "", health.to_wire())).payload) == health


def test_health_leaves_out_what_the_worker_did_not_report() -> None:
    wire = Health(status="unconfigured", reason="no key").to_wire()
    assert wire == {"status": "unconfigured", "reason": "no key", "last_error": None, "inflight": 0,
                    "degraded_since": None}
    assert Health.from_wire(wire) == Health(status="unconfigured", reason="no key")


def test_health_reads_fields_of_the_wrong_type_as_unknown_and_refuses_a_non_object() -> None:
    assert Health.from_wire({"status": "sleepy", "inflight": "2", "circuit": [1]}) == Health(status="unknown")
    with pytest.raises(ProtocolError):
        Health.from_wire(["ready"])


def test_ready_round_trips_with_its_health_and_proof() -> None:
    ready = Ready(provider="lab", health=_health(), kind="lmstudio", capabilities=["chat", "embed"],
                  incarnation="abc", pid=42, max_concurrency=8, proof={"challenge": "aa", "proof": "bb"})
    wire = ready.to_wire()
    assert wire["challenge"] == "aa" and wire["status"] == "degraded" and wire["provider"] == "lab"
    assert Ready.from_wire(decode(encode(Command.READY, "", wire)).payload) == ready


def test_the_gateway_keeps_what_a_heartbeat_leaves_out() -> None:
    async def main() -> None:
        state = WorkerState("lab")
        state.apply_ready(Ready(provider="lab", health=_health(), kind="lmstudio", incarnation="abc"), 1.0)
        assert state.up and state.unreachable() == _health().reason and state.models[0].id == "m1"
        state.apply_health(Health(status="ready"), 2.0)
        assert state.status == "ready" and state.unreachable() is None and state.degraded_since is None
        assert state.circuit == {"state": "open", "failures": 3} and [m.id for m in state.models] == ["m1"]
        state.apply_health(None, 3.0)
        assert state.status == "ready" and state.last_seen == 3.0

    asyncio.run(main())


def test_the_protocol_docstring_lists_every_command_with_its_byte_and_version() -> None:
    doc = protocol.__doc__ or ""
    assert protocol.PROTOCOL_VERSION.decode() in doc and "LLMC2\"" not in doc
    for command in Command:
        assert f"{command.name:<11} 0x{command.value.hex()}" in doc, command.name


def test_the_worker_has_a_handler_for_every_op(tmp_path: Path) -> None:
    runtime = WorkerRuntime("lab", None, None, _settings(tmp_path), link_key=LINK_KEY)
    assert set(runtime._handlers) == set(Op)


def test_the_worker_refuses_an_unknown_op_before_accepting_it(tmp_path: Path) -> None:
    config = ProviderConfig(kind="lmstudio", base_url="http://127.0.0.1:9")
    runtime = WorkerRuntime("lab", config, None, _settings(tmp_path), link_key=LINK_KEY)
    sent: list[tuple[Command, str, Any]] = []

    async def record(command: Command, request_id: str, payload: Any = None) -> None:
        sent.append((command, request_id, payload))

    async def main() -> None:
        runtime._open_adapter()
        runtime._send = record  # type: ignore[method-assign]
        runtime._start_request("r1", {"op": "dance", "request": {}, "timeout_s": 5})
        await asyncio.gather(*runtime._tasks.values())
        assert runtime._client is not None
        await runtime._client.aclose()

    asyncio.run(main())
    assert [(c, r) for c, r, _ in sent] == [(Command.ERROR, "r1")]
    error = errors.error_from_payload(sent[0][2])
    assert isinstance(error, errors.InvalidRequest) and "'dance'" in error.message and error.provider == "lab"


def test_the_worker_health_says_degraded_when_its_provider_is_unreachable(tmp_path: Path) -> None:
    config = ProviderConfig(kind="lmstudio", base_url="http://127.0.0.1:9")
    runtime = WorkerRuntime("lab", config, None, _settings(tmp_path), link_key=LINK_KEY)

    async def main() -> Health:
        runtime._open_adapter()
        assert runtime.caller is not None and runtime._client is not None
        for _ in range(config.circuit.unreachable_after):
            runtime.caller.reach.connection_failed(errors.ConnectionFailed("cannot reach lab: connection refused"))
        health = Health.from_wire(runtime._health(include_models=False).to_wire())
        await runtime._client.aclose()
        return health

    health = asyncio.run(main())
    assert health.status == "degraded" and health.last_error == "connection"
    assert health.reason is not None and "unreachable" in health.reason and health.degraded_since
    assert health.circuit is not None and health.counters is not None and health.models is None
    state = WorkerState("lab", up=True)
    state.apply_health(health, 1.0)
    assert state.unreachable() == health.reason
