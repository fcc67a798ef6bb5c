"""Prometheus metrics for the whole system, served by the gateway at ``/metrics`` (loopback).

Two kinds of series:

* events the gateway sees itself (calls, latency, time to first chunk, fallbacks,
  client-limit rejections, tokens and cost per client, provider and model), recorded as
  they happen;
* state the workers report on their heartbeats (up/down, heartbeat age, in-flight,
  circuit state, retries, rate-limit waits and rejections), read from the broker at
  scrape time by a custom collector, so one scrape shows every process and nothing is
  double-counted.

Label values are bounded: tools, error types and outcomes are fixed sets, providers and
models come from configuration or worker reports, clients are registry names, never free
client input (``gateway.call_record`` maps anything else onto ``unknown`` / ``other``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.broker import WorkerBroker

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_CALL_LABELS = ["tool", "provider", "model", "outcome"]
_CIRCUIT = {"closed": 0, "half_open": 1, "open": 2}
# Worker heartbeat counters → (metric name, help). Exposed as totals across the worker's
# restarts (gateway.worker_counters), so they never go down while the gateway runs.
_WORKER_COUNTERS = {
    "attempts": ("llmc_provider_attempts", "First attempts sent to the provider"),
    "retries": ("llmc_provider_retries", "Retries sent to the provider"),
    "failed_attempts": ("llmc_provider_failed_attempts", "Attempts (first or retry) that ended in an error"),
    "gave_up": ("llmc_provider_gave_up", "Calls ended by a failed attempt that was not retried"),
    "retry_dropped": ("llmc_provider_retries_dropped", "Planned retries that never went out"),
    "refused": ("llmc_provider_refused", "Calls refused by the worker's circuit or rate limiter"),
    "cancelled": ("llmc_provider_cancelled", "Calls cancelled while at the provider or backing off"),
    "probes": ("llmc_provider_model_listings", "Model listings sent to the provider (discovery, probes)"),
    "failed_probes": ("llmc_provider_failed_model_listings", "Model listings that ended in an error"),
    "retry_budget_granted": ("llmc_retry_budget_granted", "Retries granted by the retry budget"),
    "retry_budget_refusals": ("llmc_retry_budget_refusals", "Retries refused by the retry budget"),
    "retry_hint_violations": ("llmc_retry_hint_violations", "Provider retry hints outside the allowed window"),
    "rate_limit_waits": ("llmc_rate_limit_waits", "Calls that waited for the worker's rate limiter"),
    "rate_limit_rejections": ("llmc_rate_limit_rejections", "Calls refused by the worker's rate limiter"),
}


class _WorkerCollector(Collector):
    def __init__(self, broker: WorkerBroker, gateway_inflight: Callable[[], int]) -> None:
        self._broker = broker
        self._gateway_inflight = gateway_inflight

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("llmc_worker_up", "1 if the worker is registered and heartbeating", labels=["provider"])
        ready = GaugeMetricFamily("llmc_worker_ready", "1 if the worker reports itself ready", labels=["provider"])
        age = GaugeMetricFamily("llmc_worker_heartbeat_age_seconds", "Seconds since the last message from the worker",
                                labels=["provider"])
        inflight = GaugeMetricFamily("llmc_worker_inflight", "Calls in flight at the worker", labels=["provider"])
        circuit = GaugeMetricFamily("llmc_circuit_state", "Provider circuit: 0 closed, 1 half-open, 2 open",
                                    labels=["provider"])
        restarts = CounterMetricFamily("llmc_worker_restarts", "Worker restarts seen by the gateway",
                                       labels=["provider"])
        counters = {key: CounterMetricFamily(name, text, labels=["provider"])
                    for key, (name, text) in _WORKER_COUNTERS.items()}
        now = self._broker.now()
        for state in self._broker.workers():
            labels = [state.name]
            up.add_metric(labels, 1.0 if state.up else 0.0)
            ready.add_metric(labels, 1.0 if state.up and state.status == "ready" else 0.0)
            heartbeat = state.heartbeat_age(now) if now is not None else None
            if heartbeat is not None:
                age.add_metric(labels, heartbeat)
            inflight.add_metric(labels, float(len(state.inflight)))
            circuit.add_metric(labels, float(_CIRCUIT.get(str(state.circuit.get("state", "closed")), 0)))
            restarts.add_metric(labels, float(state.restarts_seen))
            for key, family in counters.items():
                family.add_metric(labels, float(state.counter_totals.totals.get(key, 0)))
        gateway = GaugeMetricFamily("llmc_gateway_inflight", "Tool calls in flight in the gateway")
        gateway.add_metric([], float(self._gateway_inflight()))
        yield from (up, ready, age, inflight, circuit, restarts, *counters.values(), gateway)


class GatewayMetrics:
    def __init__(self, broker: WorkerBroker, gateway_inflight: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("llmc_calls", "Tool calls by outcome (ok, an error type, or cancelled)",
                             _CALL_LABELS, registry=self.registry)
        self.latency = Histogram("llmc_call_latency_seconds", "Tool call latency in the gateway, by outcome",
                                 _CALL_LABELS, buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.first_chunk = Histogram("llmc_stream_first_chunk_seconds", "chatStream time to first progress",
                                     ["provider"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.fallbacks = Counter("llmc_fallbacks", "Routes passed over before a call was served",
                                 ["tool", "provider", "reason"], registry=self.registry)
        self.tokens = Counter("llmc_tokens", "Tokens the providers reported, by registered client name and kind: "
                              "input (cached_input included), cached_input, output (reasoning included), reasoning",
                              ["client", "provider", "model", "kind"], registry=self.registry)
        self.cost = Counter("llmc_cost_usd", "What the calls cost in USD at the configured prices (calls to "
                            "unpriced models are not counted: getHealth lists those models)",
                            ["client", "provider", "model"], registry=self.registry)
        self.client_rejections = Counter("llmc_client_limit_rejections",
                                         "Calls refused by per-client limits, by registered client name",
                                         ["client"], registry=self.registry)
        self.registry.register(_WorkerCollector(broker, gateway_inflight))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
