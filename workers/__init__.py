"""One worker process per provider: holds that provider's secret and talks to its API."""
