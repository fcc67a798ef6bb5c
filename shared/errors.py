"""The one error taxonomy of LLM Caller, used by the gateway, the workers and the wire.

Every failure a client can see is one of these classes, so a client can decide what
to do from ``type`` and ``retryable`` alone, whichever provider was behind the call::

    LLMCallerError
    ├── InternalError                 internal
    ├── ClientError                   (the caller must change something)
    │   ├── AuthError                 auth
    │   ├── PermissionDenied          permission
    │   ├── InvalidRequest            invalid_request
    │   │   └── ContextLengthExceeded context_length
    │   ├── NotFound                  not_found
    │   ├── QuotaExhausted            quota_exhausted
    │   ├── BudgetExceeded            budget_exceeded
    │   ├── Unsupported               unsupported
    │   ├── GuardViolation            guard_violation
    │   └── ContentBlocked            content_blocked
    └── TransientError                (retrying later may succeed)
        ├── RateLimited               rate_limited
        ├── Overloaded                overloaded
        ├── ProviderError             provider_error
        ├── Timeout                   timeout
        ├── ConnectionFailed          connection
        ├── WorkerLost                worker_lost
        ├── Unavailable               unavailable
        ├── StreamInterrupted         stream_interrupted
        └── InvalidOutput             invalid_output

Each concrete class declares, in its ``policy`` and nowhere else, what every part of the
system does with it (``ErrorPolicy``): whether the client may retry, whether the worker
retries it, whether it counts toward the circuit breaker, whether the gateway may try the
next route, how the worker's health reports it, and the text the docs show for it. The
gateway, the worker's retry planner and circuit breaker, the worker runtime and the
README / runbook / interface tables (``python -m docgen --write``) all read it, so
adding an error type is one class here plus regenerating the docs.

Messages are written for the person reading the client's output. They never carry a
traceback, a provider key or a client token: code that builds one from provider text
passes it through ``shared.redact`` first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ERROR_TYPES",
    "AuthError",
    "BudgetExceeded",
    "ClientError",
    "ConnectionFailed",
    "ContentBlocked",
    "ContextLengthExceeded",
    "ErrorPolicy",
    "GuardViolation",
    "InternalError",
    "InvalidOutput",
    "InvalidRequest",
    "LLMCallerError",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "ProviderError",
    "QuotaExhausted",
    "RateLimited",
    "StreamInterrupted",
    "Timeout",
    "TransientError",
    "Unavailable",
    "Unsupported",
    "WorkerLost",
    "WorkerRetry",
    "error_class",
    "error_from_payload",
]


class WorkerRetry(enum.Enum):
    """Whether the worker's retry planner tries a failed provider call again (within its
    attempts, deadline and budget; never once a stream chunk went out)."""

    # Someone else's job: the gateway's (worker_lost, unavailable), or the text already went out.
    NEVER = "never"
    # Not by default; the provider may say otherwise with ``x-should-retry: true``.
    IF_PROVIDER_ASKS = "if the provider asks"
    # By default; the provider may forbid it with ``x-should-retry: false``.
    UNLESS_PROVIDER_REFUSES = "yes"


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """What every part of LLM Caller does with one error type, declared once on its class."""

    # The client may send the same call again later and succeed (``retryable`` on the wire).
    retryable: bool
    worker_retry: WorkerRetry
    # A failure that says the provider is unhealthy: it counts toward opening the circuit.
    circuit: bool
    # Nothing was produced and the route cannot serve now: the gateway may try the next route.
    fallback: bool
    # The worker reports it as its ``last_error`` in health when a call ends with it.
    health: bool
    # ... and drops it from ``last_error`` once the provider answers a probe again.
    cleared_by_answer: bool
    # One line for the README and the interface reference.
    summary: str
    # The runbook's "means" and "what to do" columns (markdown, links relative to runbook/).
    means: str
    action: str

    def worker_retries(self, should_retry: bool | None) -> bool:
        """Whether the worker retries this error, given the provider's ``x-should-retry`` (None: not sent)."""
        if self.worker_retry is WorkerRetry.NEVER or should_retry is False:
            return False
        return self.worker_retry is WorkerRetry.UNLESS_PROVIDER_REFUSES or should_retry is True


_BY_TYPE: dict[str, type[LLMCallerError]] = {}


class LLMCallerError(Exception):
    """Base of every error that may reach a client."""

    type: ClassVar[str]
    policy: ClassVar[ErrorPolicy]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register each class that names a wire ``type``; it must declare its own policy."""
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            return
        if "policy" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} names type {cls.type!r} but declares no policy")
        if cls.type in _BY_TYPE:
            raise TypeError(f"error type {cls.type!r} is declared twice")
        _BY_TYPE[cls.type] = cls

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        partial_text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        self.partial_text = partial_text
        # The token counts the provider reported before the failure (``Usage.to_wire``), for a stream
        # that broke after its provider had reported some: what the call still cost.
        self.usage: dict[str, Any] | None = None
        # The provider's own verdict (x-should-retry), when it gave one; None = follow the policy.
        self.should_retry: bool | None = None
        # stream_interrupted: the type of the failure that broke the stream (``worker_lost``,
        # ``timeout``, ...), so a client can tell a lost worker from a provider that hung up.
        self.cause: str | None = None

    @property
    def retryable(self) -> bool:
        """Whether the client may send the same call again later and succeed."""
        return self.policy.retryable

    def to_payload(self) -> dict[str, Any]:
        """The shape sent over the worker link and returned to MCP clients."""
        payload: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "retryable": self.policy.retryable,
            "retry_after_s": self.retry_after_s,
            "provider": self.provider,
            "request_id": self.request_id,
        }
        if self.partial_text is not None:
            payload["partial_text"] = self.partial_text
        if self.usage is not None:
            payload["usage"] = self.usage
        if self.cause is not None:
            payload["cause"] = self.cause
        return payload

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"


class ClientError(LLMCallerError):
    """The request cannot succeed as sent; retrying it unchanged is pointless."""


class TransientError(LLMCallerError):
    """The request may succeed if sent again later."""


def _client(summary: str, means: str, action: str, *, health: bool = False) -> ErrorPolicy:
    """A client error's policy: never retried unless the provider asks, no circuit, no fallback."""
    return ErrorPolicy(retryable=False, worker_retry=WorkerRetry.IF_PROVIDER_ASKS, circuit=False, fallback=False,
                       health=health, cleared_by_answer=False, summary=summary, means=means, action=action)


class InternalError(LLMCallerError):
    """A bug in LLM Caller itself. The message is generic on purpose: details go to the log."""

    type = "internal"
    policy = _client(
        "a bug in LLM Caller; the message is generic on purpose, details are in the gateway log",
        "a bug in LLM Caller; the message is generic on purpose",
        "find the `request_id` or the time in `gateway.log` (`call_crashed` / `exc_type`) and report it",
    )


class AuthError(ClientError):
    type = "auth"
    policy = _client(
        "the provider rejected its key, or the client's entry vanished mid-call",
        "a credential was refused: the provider rejected its key (`provider` is set), or the client's entry "
        "vanished from the registry mid-call",
        "provider: the key is wrong, revoked or for another account; [rotate it](rotation.md#provider-keys). "
        "Client: re-add it or give it its new token",
        health=True,
    )


class PermissionDenied(ClientError):
    type = "permission"
    policy = _client(
        "this client may not use this tool or provider",
        "this client may not use this tool or provider",
        "`llm-caller clients list`; widen its `--tools` / `--providers` with a new entry if that is intended "
        "([rotation](rotation.md#client-tokens))",
    )


class InvalidRequest(ClientError):
    type = "invalid_request"
    policy = _client(
        "bad arguments; the message names the field",
        "bad arguments; the message names the field and never echoes the value",
        "fix the caller; limits are in [the interface reference](../docs/interface.md#limits)",
    )


class ContextLengthExceeded(InvalidRequest):
    type = "context_length"
    policy = _client(
        "prompt too long for the model",
        "the prompt is too long for the chosen model",
        "shorten the input or pick a model with a larger context",
    )


class NotFound(ClientError):
    type = "not_found"
    policy = _client(
        "unknown provider, model or tool; the message lists what exists",
        "unknown provider, model or tool; the message lists what exists",
        "use a listed name; `getHealth` lists each worker's models",
    )


class QuotaExhausted(ClientError):
    type = "quota_exhausted"
    policy = _client(
        "billing or quota used up (OpenAI `insufficient_quota`, Anthropic 402); waiting will not help",
        "the provider says billing or quota is used up (OpenAI `insufficient_quota`, Anthropic 402)",
        "waiting will not help: top up or raise the quota with the provider",
    )


class BudgetExceeded(ClientError):
    """A spending budget of the operator's (per client per UTC day or month, or per provider per
    month) has no room left for this call. Refused before anything is sent, so it cost nothing;
    the message names the budget and the UTC time it resets."""

    type = "budget_exceeded"
    # Raised by the gateway before dispatch: no worker ever sees it, so none retries it.
    policy = ErrorPolicy(
        retryable=False, worker_retry=WorkerRetry.NEVER, circuit=False, fallback=False, health=False,
        cleared_by_answer=False,
        summary="a spending budget (client per UTC day/month, provider per month) is used up; the message names "
                "it and when it resets",
        means="a budget set by the operator (a client's `usd_per_day`, `usd_per_month` or `tokens_per_day`, or a "
              "provider's `usd_per_month`) has no room for this call; nothing was sent. Days and months are UTC",
        action="wait for the reset the message names, or raise the budget ([usage](usage.md#budgets)); "
               "`llm-caller usage --client NAME` shows what was spent",
    )


class Unsupported(ClientError):
    type = "unsupported"
    policy = _client(
        "the provider or model cannot do this (e.g. embed on Anthropic, an image to a model without vision)",
        "the provider or model cannot do this (embeddings on Anthropic; images, tools, a schema or reasoning for a "
        "model without that feature; a sampling parameter its kind does not take)",
        "route the call elsewhere (`provider`/`model`, or the default in `providers.json`); for a sampling "
        "parameter, `drop_unsupported: true`",
    )


class GuardViolation(ClientError):
    type = "guard_violation"
    policy = _client(
        "a safety guard stopped the call",
        "a safety guard stopped the call (for example a stream over its size limits)",
        "see the message; the limits are the provider's `stream_guards`",
    )


class ContentBlocked(ClientError):
    """The provider's own safety or policy filter refused the prompt or stopped the answer.

    Not retried (the same prompt meets the same filter), not a sign of an unhealthy
    provider (no circuit), and not routed to the next provider: sending a refused prompt
    elsewhere behind the caller's back would route around a policy decision. The message
    names the provider's reason and category, never the prompt or the answer.
    """

    type = "content_blocked"
    policy = _client(
        "the provider's safety or policy filter refused the prompt or stopped the answer; the message says "
        "which reason",
        "the provider's own safety or policy filter refused the prompt or cut the answer off (Gemini "
        "`blockReason` or `finishReason` SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII, RECITATION); the "
        "message names the reason and category, never the text",
        "change the prompt; the call is not retried or sent to another provider. Repeated blocks for "
        "harmless prompts: see [troubleshooting](troubleshooting.md#calls-fail-with-content_blocked)",
    )


class RateLimited(TransientError):
    type = "rate_limited"
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.UNLESS_PROVIDER_REFUSES, circuit=False, fallback=True,
        health=True, cleared_by_answer=False,
        summary="slow down; `retry_after_s` when the provider said",
        means="slow down: the provider said so, or a local limit (the worker's `rate_limits`, the client's "
              "registry `limits`) was hit",
        action="check `retry_after_s` and the worker's `counters` in `getHealth`; raise the local limit (a "
               "client's: `llm-caller clients update NAME --requests-per-min N`) or the provider tier",
    )


class Overloaded(TransientError):
    type = "overloaded"
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.UNLESS_PROVIDER_REFUSES, circuit=True, fallback=True,
        health=True, cleared_by_answer=False,
        summary="provider busy (Anthropic 529, 503)",
        means="the provider is busy (Anthropic 529, HTTP 503)",
        action="nothing locally; configure `fallbacks` so calls move to another provider",
    )


class ProviderError(TransientError):
    type = "provider_error"
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.UNLESS_PROVIDER_REFUSES, circuit=True, fallback=True,
        health=True, cleared_by_answer=False,
        summary="provider-side failure (5xx, malformed payload)",
        means="the provider failed (5xx, a reply we could not parse, an HTML page where a stream was expected, "
              "or a connection closed before a complete answer)",
        action="check the provider's status page; the worker's `last_error` and `circuit` in `getHealth`; an "
               "HTML page means a proxy, captive portal or wrong `base_url` answered",
    )


class Timeout(TransientError):
    type = "timeout"
    # Not fallback-eligible: the call's deadline is spent.
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.UNLESS_PROVIDER_REFUSES, circuit=True, fallback=False,
        health=True, cleared_by_answer=True,
        summary="the call's deadline passed",
        means="the call's deadline passed (`timeout_s`, or the provider's `timeouts` in `providers.json`)",
        action="a slow provider or a too-tight deadline; compare `latency_ms` in `tool_call` lines",
    )


class ConnectionFailed(TransientError):
    type = "connection"
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.UNLESS_PROVIDER_REFUSES, circuit=True, fallback=True,
        health=True, cleared_by_answer=True,
        summary="provider unreachable; the message names the base URL and why",
        means="the provider could not be reached; the message names the base URL and why (\"connection refused "
              "(is the server running?)\", \"host name not found\")",
        action="network, DNS, proxy, or a wrong `base_url`; for LM Studio, is the server running on its port? "
               "\"its TLS certificate was not accepted\": a proxy that intercepts TLS, or a self-signed "
               "`base_url` (certificates are always verified). A few in a row make the worker `degraded` "
               "([troubleshooting](troubleshooting.md#gethealth-shows-a-worker-degraded))",
    )


class WorkerLost(TransientError):
    type = "worker_lost"
    # Neither retried nor re-routed: the provider may already have done (and billed) the work.
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.NEVER, circuit=False, fallback=False,
        health=True, cleared_by_answer=False,
        summary="the worker died after accepting the call; the call was **not** repeated",
        means="the worker died or was restarted after accepting the call; the call was **not** repeated because "
              "it may already have cost money",
        action="expected during a [worker restart](start-stop.md#restart-one-worker); otherwise read that "
               "worker's log and `supervisord.log` for why it exited",
    )


class Unavailable(TransientError):
    type = "unavailable"
    # The gateway's to handle (the next route), not the worker's to retry.
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.NEVER, circuit=False, fallback=True,
        health=True, cleared_by_answer=False,
        summary="no worker can take the call now (restarting, unconfigured, at its limit, its provider "
                "unreachable)",
        means="no worker can take the call now: it is restarting or down, `unconfigured` (no key), at its "
              "`max_concurrency`, or the gateway is at its in-flight limit or shutting down",
        action="the message says which; see [troubleshooting](troubleshooting.md#calls-fail-with-unavailable)",
    )


class StreamInterrupted(TransientError):
    type = "stream_interrupted"
    # Text already reached the caller: nothing may be repeated or switched behind its back.
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.NEVER, circuit=False, fallback=False,
        health=True, cleared_by_answer=False,
        summary="a stream broke after sending text; `partial_text` has what was sent (a failure before the "
                "first chunk is `provider_error` / `connection` / `timeout`, retried and eligible for fallback)",
        means="a `chatStream` broke after some text reached the client; `partial_text` holds what was sent. Only "
              "then: a stream that fails before its first chunk is `provider_error`, `connection` or `timeout` "
              "and was already retried and, with `fallbacks`, routed elsewhere",
        action="as `provider_error` / `connection`; the client decides whether to keep the partial text or retry",
    )


class InvalidOutput(TransientError):
    """A structured-output reply (``response_format``) that is not JSON or does not match the schema.

    Raised by the gateway, never by a worker: the provider answered, so it is healthy (no
    circuit) and the worker has nothing to retry. Not sent to the next route either: the
    answer was paid for (and on ``chatStream`` already sent as progress), and asking another
    model the same prompt behind the caller's back would double the cost and hide which model
    failed. Retryable: a model's output varies, so the same call may validate next time. The
    payload carries the reply (``raw_text``) and the first validation error, never the prompt.
    """

    type = "invalid_output"
    policy = ErrorPolicy(
        retryable=True, worker_retry=WorkerRetry.NEVER, circuit=False, fallback=False,
        health=False, cleared_by_answer=False,
        summary="a `response_format` reply that is not JSON or does not match the schema; `raw_text` has the "
                "reply, `validation_error` the most relevant mismatch (`path`, `message`)",
        means="the model answered a call with `response_format`, but its reply is not JSON (or, for `json_object`, "
              "not a JSON object) or does not match the schema; `raw_text` holds the reply and "
              "`validation_error` the first mismatch. Not retried, not routed elsewhere (the answer was paid for)",
        action="usually the model: send the call again, or pick a model with native strict schema support "
               "(`listModels` with `feature: json_schema`). Every call failing the same way: check the schema "
               "(a too-tight `maxLength`, a `required` field the model cannot know) or raise `max_tokens` (a reply "
               "cut off at the limit is not JSON)",
    )

    def __init__(self, message: str, *, raw_text: str = "", validation_error: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.raw_text = raw_text
        self.validation_error = validation_error

    def to_payload(self) -> dict[str, Any]:
        payload = super().to_payload()
        payload["raw_text"] = self.raw_text
        if self.validation_error is not None:
            payload["validation_error"] = self.validation_error
        return payload


ERROR_TYPES: tuple[str, ...] = tuple(_BY_TYPE)


def error_class(type_name: str) -> type[LLMCallerError]:
    """The class of a wire ``type``; an unknown type is an InternalError."""
    return _BY_TYPE.get(type_name, InternalError)


def error_from_payload(payload: dict[str, Any]) -> LLMCallerError:
    """Rebuild an error sent over the wire; an unknown type becomes an InternalError."""
    cls = error_class(str(payload.get("type")))
    retry_after = payload.get("retry_after_s")
    partial = payload.get("partial_text")
    error = cls(
        str(payload.get("message") or "unknown error"),
        provider=payload.get("provider"),
        request_id=payload.get("request_id"),
        retry_after_s=float(retry_after) if isinstance(retry_after, (int, float)) else None,
        partial_text=partial if isinstance(partial, str) else None,
    )
    usage = payload.get("usage")
    error.usage = usage if isinstance(usage, dict) else None
    cause = payload.get("cause")
    error.cause = cause if isinstance(cause, str) and cause in _BY_TYPE else None
    return error
