"""What a worker does around each provider call: retries, rate limits, circuit breaking, stream guards.

Everything here lives in the worker because the worker alone sees the provider: its
errors, its rate-limit headers and its retry hints. The gateway only sees the outcome.
"""
