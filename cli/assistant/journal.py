"""Recording configuration changes in the audit trail from the CLI.

The change is already on disk when this runs, so a failure to record it is a warning,
not an error: reporting "failed" for a save that happened would be the worse lie.
"""

from __future__ import annotations

import sys
from typing import Any

from shared.audit import audit_event
from shared.files import FileWriteError
from shared.settings import Settings

__all__ = ["record"]


def record(settings: Settings, event: str, **fields: Any) -> None:
    try:
        audit_event(settings.audit_file, event, **fields)
    except FileWriteError as exc:
        print(f"llm-caller: warning: the change was saved but not recorded: {exc}; "
              "fix: set LLMC_LOG_DIR to a writable folder", file=sys.stderr)
