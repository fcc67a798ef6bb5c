"""The configuration assistant behind ``llm-caller config``: providers, clients, rollback.

Every change, whether it comes from the interactive menu (``menu``) or from flags
(``providers``, ``rollback``), goes through one pipeline in ``store``: build the new
file, validate it as the gateway would, show what changes, confirm, write atomically
with a dated backup, and append an audit line. Keys never reach a config file: they go
to 0600 files under ``CONFIG_DIR/secrets/`` (``credentials``) or stay in the environment.
"""
