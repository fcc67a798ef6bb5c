"""Keep the OpenAI emulator's simulated request quota from pausing the full stack mid-run.

The emulator plays a 10,000-request quota: every 10,000th response carries
``x-ratelimit-remaining-requests: 0`` (with ``x-ratelimit-reset-requests: 6m0s``), and
the worker rightly honours that by pausing the provider for up to two minutes. A
benchmark sends far more than 10,000 requests, so without care some stack cell would
receive that response and spend its rounds failing with ``rate_limited``, while the
direct and baseline targets, which ignore the headers, would not. So before any stack
traffic, the runner makes sure enough quota is left, and otherwise spends the rest on
cheap ``GET /v1/models`` calls of its own, so that the "0" goes to one of them.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson

__all__ = ["EmulatorQuota"]

REMAINING = "x-ratelimit-remaining-requests"
MAX_NEEDED = 9_000  # the quota is 10,000: ask for more and every check would spend it all


class EmulatorQuota:
    def __init__(self, base_url: str, key: str, parallel: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"authorization": f"Bearer {key}"}
        self.parallel = parallel
        self.burned = 0  # requests this object sent: checks and spending
        self.faulted = 0  # of those, how many were answered with an injected fault (the soak's tally)

    def remaining(self) -> int | None:
        """What the emulator says is left after this very request (None: it did not say)."""
        try:
            response = httpx.get(f"{self.base_url}/v1/models", headers=self.headers, timeout=5, trust_env=False)
        except httpx.HTTPError:
            self.faulted += 1
            return None  # a fault the soak injected
        self._check(response)
        value = response.headers.get(REMAINING)
        return int(value) if value is not None and value.isdigit() else None

    def ensure(self, needed: int) -> int:
        """Make sure at least ``needed`` requests are left before the quota's zero; returns requests spent."""
        before = self.burned
        for _ in range(5):  # an injected fault may swallow a request: check again
            left = self.remaining()
            self.burned += 1
            if left is not None and left >= min(needed, MAX_NEEDED):
                break
            if left is not None:
                # ``left`` more requests reach the zero; one more and the count starts again.
                asyncio.run(self._spend(left + 1))
        return self.burned - before

    def _check(self, response: httpx.Response) -> None:
        """Count ``response`` as faulted unless it is the listing a healthy server sends."""
        try:
            listing = orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            listing = None  # the ``malformed`` fault: 200 with a broken body
        if not isinstance(listing, dict) or "data" not in listing:
            self.faulted += 1

    async def _spend(self, count: int) -> None:
        limits = httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel)
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, limits=limits, timeout=5,
                                     trust_env=False) as http:
            queue = iter(range(count))

            async def lane() -> None:
                for _ in queue:
                    self.burned += 1  # counted live: the soak's fault feeder leaves these out
                    try:
                        self._check(await http.get("/v1/models"))
                    except httpx.HTTPError:
                        self.faulted += 1
                        continue  # a fault injected by the soak; the next check catches up

            await asyncio.gather(*(lane() for _ in range(self.parallel)))
