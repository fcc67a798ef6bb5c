"""One worker process per provider: holds that provider's secret and talks to its API."""

import sys

# httpx imports its command-line client, and with it click and pygments (~2 MB resident
# per process), whenever those happen to be installed; a worker never uses it. A None
# entry in sys.modules makes that optional import fail, which httpx handles by design.
# Three workers share the gateway's 250 MB budget (issue 7).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
