"""The one error taxonomy of LLM Caller, used by the gateway, the workers and the wire.

Every failure a client can see is one of these classes, so a client can decide what
to do from ``type`` and ``retryable`` alone, whichever provider was behind the call::

    LLMCallerError
    ├── ClientError                  (the caller must change something; never retried)
    │   ├── AuthError                 auth: bad or missing credentials (client or provider key)
    │   ├── PermissionDenied          permission: authenticated but not allowed
    │   ├── InvalidRequest            invalid_request: malformed or out-of-range input
    │   │   └── ContextLengthExceeded context_length: prompt too long for the model
    │   ├── NotFound                  not_found: unknown model, provider or tool
    │   ├── QuotaExhausted            quota_exhausted: billing/quota, waiting will not help
    │   ├── Unsupported               unsupported: the provider cannot do this at all
    │   └── GuardViolation            guard_violation: a safety guard stopped the call
    └── TransientError               (retrying later may succeed)
        ├── RateLimited               rate_limited: slow down; retry_after_s when known
        ├── Overloaded                overloaded: provider busy (529, 503)
        ├── ProviderError             provider_error: provider-side failure (5xx, bad payload)
        ├── Timeout                   timeout: deadline passed
        ├── ConnectionFailed          connection: provider unreachable
        ├── WorkerLost                worker_lost: the worker died after accepting the call
        ├── Unavailable               unavailable: no worker can take the call right now
        └── StreamInterrupted         stream_interrupted: a stream broke after text was sent

Messages are written for the person reading the client's output. They never carry a
traceback, a provider key or a client token: code that builds one from provider text
passes it through ``shared.redact`` first.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthError",
    "ClientError",
    "ConnectionFailed",
    "ContextLengthExceeded",
    "GuardViolation",
    "InternalError",
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
    "error_from_payload",
]


class LLMCallerError(Exception):
    """Base of every error that may reach a client."""

    type: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

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
        # The provider's own verdict (x-should-retry), when it gave one; None = follow the class.
        self.should_retry: bool | None = None

    def to_payload(self) -> dict[str, Any]:
        """The shape sent over the worker link and returned to MCP clients."""
        payload: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
            "retry_after_s": self.retry_after_s,
            "provider": self.provider,
            "request_id": self.request_id,
        }
        if self.partial_text is not None:
            payload["partial_text"] = self.partial_text
        return payload

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"


class ClientError(LLMCallerError):
    """The request cannot succeed as sent; retrying it unchanged is pointless."""


class TransientError(LLMCallerError):
    """The request may succeed if sent again later."""

    retryable = True


class InternalError(LLMCallerError):
    """A bug in LLM Caller itself. The message is generic on purpose: details go to the log."""

    type = "internal"


class AuthError(ClientError):
    type = "auth"


class PermissionDenied(ClientError):
    type = "permission"


class InvalidRequest(ClientError):
    type = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    type = "context_length"


class NotFound(ClientError):
    type = "not_found"


class QuotaExhausted(ClientError):
    type = "quota_exhausted"


class Unsupported(ClientError):
    type = "unsupported"


class GuardViolation(ClientError):
    type = "guard_violation"


class RateLimited(TransientError):
    type = "rate_limited"


class Overloaded(TransientError):
    type = "overloaded"


class ProviderError(TransientError):
    type = "provider_error"


class Timeout(TransientError):
    type = "timeout"


class ConnectionFailed(TransientError):
    type = "connection"


class WorkerLost(TransientError):
    type = "worker_lost"


class Unavailable(TransientError):
    type = "unavailable"


class StreamInterrupted(TransientError):
    type = "stream_interrupted"


_BY_TYPE: dict[str, type[LLMCallerError]] = {
    cls.type: cls
    for cls in (
        InternalError,
        AuthError,
        PermissionDenied,
        InvalidRequest,
        ContextLengthExceeded,
        NotFound,
        QuotaExhausted,
        Unsupported,
        GuardViolation,
        RateLimited,
        Overloaded,
        ProviderError,
        Timeout,
        ConnectionFailed,
        WorkerLost,
        Unavailable,
        StreamInterrupted,
    )
}

ERROR_TYPES: tuple[str, ...] = tuple(_BY_TYPE)


def error_from_payload(payload: dict[str, Any]) -> LLMCallerError:
    """Rebuild an error sent over the wire; an unknown type becomes an InternalError."""
    cls = _BY_TYPE.get(str(payload.get("type")), InternalError)
    retry_after = payload.get("retry_after_s")
    partial = payload.get("partial_text")
    return cls(
        str(payload.get("message") or "unknown error"),
        provider=payload.get("provider"),
        request_id=payload.get("request_id"),
        retry_after_s=float(retry_after) if isinstance(retry_after, (int, float)) else None,
        partial_text=partial if isinstance(partial, str) else None,
    )
