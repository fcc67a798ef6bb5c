"""The `llm-caller` operator command."""
