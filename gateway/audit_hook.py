"""What the gateway writes to the audit trail about its workers.

Worker restarts, deaths and link-authentication failures seen by the broker are audit
events: an operator reviewing an incident needs them next to auth failures and config
changes, in the one append-only file. Readiness is routine and stays in the log only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared.audit import audit_event
from shared.files import FileWriteError
from shared.logs import log_event

__all__ = ["AUDITED_WORKER_EVENTS", "worker_audit_hook"]

log = logging.getLogger("gateway.audit")

AUDITED_WORKER_EVENTS = frozenset({"worker_restarted", "worker_down", "link_auth_failed"})


def worker_audit_hook(audit_file: Path) -> Any:
    def on_event(event: str, fields: dict[str, Any]) -> None:
        if event not in AUDITED_WORKER_EVENTS:
            return
        try:
            audit_event(audit_file, event, **fields)
        except (FileWriteError, OSError) as exc:
            # The broker must keep running: an audit write failure is logged loudly instead.
            log_event(log, "audit_write_failed", level=logging.ERROR, audit_event=event, reason=str(exc))

    return on_event
