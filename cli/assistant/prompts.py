"""questionary glue for the menu: cancellable questions and the menu's ``Ui``.

questionary's ``ask()`` turns Ctrl-C into ``None``; ``ask`` here turns that into ``Back``,
which every flow lets through to the main menu, so Ctrl-C in any question means
"forget this action", never a traceback and never a half-made change.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import questionary

from cli.options import CommandRefused

__all__ = ["Back", "MenuUi", "ask", "validator"]


class Back(Exception):
    """The operator cancelled the current action."""


def ask(question: Any) -> Any:
    answer = question.ask()
    if answer is None:
        raise Back
    return answer


def validator(check: Callable[[str], object]) -> Callable[[str], bool | str]:
    """A questionary validator from a parse function that raises with the operator message."""

    def run(text: str) -> bool | str:
        try:
            check(text)
        except (ValueError, argparse.ArgumentTypeError, CommandRefused) as exc:
            return str(exc)
        return True

    return run


class MenuUi:
    """The save pipeline's questions as prompts; a failed check asks rather than refuses."""

    def say(self, text: str) -> None:
        print(text)

    def warn(self, text: str) -> None:
        print(f"warning: {text}")

    def confirm(self, question: str) -> bool:
        return bool(ask(questionary.confirm(question, default=True)))

    def accept_failure(self, problem: str, fix: str) -> bool:
        print(problem)
        return bool(ask(questionary.confirm("Save anyway?", default=False)))
