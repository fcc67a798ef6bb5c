"""How the assistant talks to the operator; one implementation for flag commands, one for the menu.

The save pipeline only asks two kinds of question: "save this?" and "the check failed,
save anyway?". Flag commands answer the first from ``--yes`` (or a prompt on a
terminal) and never say yes to the second: a script must not store a key that was just
rejected.
"""

from __future__ import annotations

import sys
from typing import Protocol

from cli.options import CommandRefused

__all__ = ["CliUi", "Ui", "on_terminal"]


class Ui(Protocol):
    def say(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def confirm(self, question: str) -> bool:
        """Whether to go ahead with a change just shown."""

    def accept_failure(self, problem: str, fix: str) -> bool:
        """Whether to save although a check failed; ``fix`` says how to avoid the question."""


def on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class CliUi:
    """For ``llm-caller config providers ...`` and ``rollback``: plain lines, prompts only on a terminal."""

    def __init__(self, *, assume_yes: bool) -> None:
        self.assume_yes = assume_yes

    def say(self, text: str) -> None:
        print(text)

    def warn(self, text: str) -> None:
        print(f"llm-caller: warning: {text}", file=sys.stderr)

    def confirm(self, question: str) -> bool:
        if self.assume_yes:
            return True
        if not on_terminal():
            raise CommandRefused("not saved: nobody to confirm the change; fix: pass --yes to save without asking")
        import questionary  # only on a terminal: the import costs more than the rest of the command

        if not questionary.confirm(question, default=True).ask():
            # Non-zero, so `llm-caller config ... && next-step` stops when the operator said no.
            raise CommandRefused("not saved: the change was not confirmed")
        return True

    def accept_failure(self, problem: str, fix: str) -> bool:
        raise CommandRefused(f"{problem}; nothing was saved; fix: {fix}")
