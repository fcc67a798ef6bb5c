"""getHealth, model discovery refresh and metric labels, from worker state on ``FakeBroker``.

Fast twins of tests/integration/test_tools.py::test_get_health_reports_every_worker and
test_provider_down.py's degraded health: what the gateway reports is computed from
``WorkerState``, which a test sets directly here.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.fake_broker import FakeCall, FakeEvent
from shared import errors
from shared.models import ModelInfo
from tests.unit.gateway.service_fakes import PROVIDERS, answers, make_service, providers


def test_health_is_ok_when_every_worker_is_up_and_ready() -> None:
    svc, fake = make_service(answers)
    fake.worker("openai").circuit = {"state": "closed"}
    fake.worker("openai").inflight.add("r1")
    health = svc.health()
    assert health.status == "ok"
    assert [(w.provider, w.kind, w.up) for w in health.workers] == [
        ("openai", "openai", True), ("backup", "openai", True), ("anthropic", "anthropic", True),
        ("lmstudio", "lmstudio", True)]
    openai = health.workers[0]
    assert openai.inflight == 1 and openai.circuit == {"state": "closed"}
    assert openai.heartbeat_age_s is None, "no heartbeat seen yet"


def test_health_is_degraded_while_some_worker_is_not_ready_and_down_when_none_is() -> None:
    svc, fake = make_service(answers)
    lmstudio = fake.worker("lmstudio")
    lmstudio.status, lmstudio.reason = "degraded", "LM Studio is not reachable at http://127.0.0.1:3"
    fake.worker("anthropic").mark_down()
    health = svc.health()
    assert health.status == "degraded"
    lm = next(w for w in health.workers if w.provider == "lmstudio")
    assert (lm.status, lm.reason) == ("degraded", "LM Studio is not reachable at http://127.0.0.1:3")
    for name in PROVIDERS["providers"]:
        fake.worker(name).mark_down()
    assert svc.health().status == "down"


def test_heartbeat_age_is_measured_on_the_brokers_clock() -> None:
    svc, fake = make_service(answers)
    fake._clock = lambda: 100.0  # the fake's clock, as the real broker's event-loop time
    fake.worker("openai").last_seen = 99.25
    assert svc.health().workers[0].heartbeat_age_s == 0.75


def test_refresh_asks_only_discovering_workers_that_are_up_and_keeps_their_answer() -> None:
    config = providers(providers={**PROVIDERS["providers"], "lmstudio": {
        **PROVIDERS["providers"]["lmstudio"], "discover_models": True}})

    def handler(call: FakeCall) -> list[FakeEvent]:
        return [{"models": [ModelInfo("qwen-chat", ["chat"], loaded=True).to_wire()]}]

    svc, fake = make_service(handler, config)
    asyncio.run(svc.refresh_models())
    assert [(c.provider, c.op) for c in fake.calls] == [("lmstudio", "models")]
    assert [m.id for m in fake.worker("lmstudio").models] == ["qwen-chat"]
    fake.worker("lmstudio").mark_down()
    asyncio.run(svc.refresh_models())
    assert len(fake.calls) == 1, "a down worker is not asked"


def test_a_failed_refresh_keeps_the_last_known_models_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    config = providers(providers={**PROVIDERS["providers"], "lmstudio": {
        **PROVIDERS["providers"]["lmstudio"], "discover_models": True}})
    svc, fake = make_service(lambda call: [errors.ConnectionFailed("refused")], config)
    known = [ModelInfo("qwen-chat", ["chat"])]
    fake.worker("lmstudio").models = known
    with caplog.at_level("WARNING", logger="gateway.calls"):
        asyncio.run(svc.refresh_models())
    assert fake.worker("lmstudio").models == known
    [record] = [r for r in caplog.records if r.getMessage() == "model_refresh_failed"]
    assert (record.__dict__["provider"], record.__dict__["error"]) == ("lmstudio", "connection")


@pytest.mark.parametrize(("provider", "model", "labels"), [
    ("openai", "gpt-4o-mini", ("openai", "gpt-4o-mini")),
    ("anthropic", "claude-haiku-4-5", ("anthropic", "claude-haiku-4-5")),
    ("openai", "made-up-by-a-caller", ("openai", "other")),
    ("openai", None, ("openai", "")),
    ("nosuch", "gpt-4o-mini", ("", "")),
    (None, None, ("", "")),
    ("lmstudio", "qwen-chat", ("lmstudio", "qwen-chat")),
])
def test_metric_labels_come_from_bounded_sets(provider: str | None, model: str | None,
                                               labels: tuple[str, str]) -> None:
    svc, fake = make_service(answers)
    fake.worker("lmstudio").models = [ModelInfo("qwen-chat", ["chat"])]  # discovered, so bounded
    assert svc.metric_labels(provider, model) == labels
