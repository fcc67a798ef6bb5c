"""MCP Tasks (``io.modelcontextprotocol/tasks``, protocol 2026-07-28) on the gateway.

A client that declares the extension on a ``tools/call`` may get a task handle instead of
the result; it then polls ``tasks/get`` and may ``tasks/cancel``. Modules:

- ``wire``      the extension's names, error shapes and the ``Task`` view of a ``TaskRow``
- ``policy``    whether one call becomes a task (server-directed, per request)
- ``progress``  chatStream deltas of a task call, coalesced into its status message
- ``runner``    runs task calls in the background, writes their outcome, keeps the lease,
                fails orphans, purges expired tasks, relays cancels from other gateways
- ``methods``   ``tasks/get``, ``tasks/cancel``, ``tasks/update`` and their checks
- ``extension`` installs all of it on the low-level SDK server

Nothing is imported here: ``gateway.tool_table`` reads ``progress`` while ``extension``
reads the tool table.
"""
