"""The interactive assistant, driven through a pseudo-terminal like an operator would.

Kept to two flows: the prompts are questionary's, and what matters here is that the
menu reaches the same save pipeline, hides the key as it is typed, and cancels cleanly.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pexpect
import pytest

from emulators.server import BackgroundEmulators
from shared.tokens import token_matches
from tests.unit.cli.assistant.conftest import OPENAI_KEY, audit_lines, providers

REPO = Path(__file__).resolve().parents[4]
DOWN, ENTER, CLEAR_LINE, CTRL_C = "\x1b[B", "\r", "\x15", "\x03"
MENU = "What do you want to do"


@pytest.fixture
def menu(cfg: Path, audit_file: Path) -> Iterator[tuple[pexpect.spawn, list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_")}
    # No cursor-position requests: nobody on the other end of this pty would answer them.
    env.update(TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", LLMC_LOG_DIR=str(audit_file.parent))
    child = pexpect.spawn(sys.executable, ["-m", "cli.main", "config", "--config-dir", str(cfg)], cwd=str(REPO),
                          env=env, encoding="utf-8", timeout=15, dimensions=(50, 160))
    seen: list[str] = []

    class Log:
        def write(self, data: str) -> None:
            seen.append(data)

        def flush(self) -> None:
            pass

    child.logfile_read = Log()
    yield child, seen
    child.close(force=True)


def _choose(child: pexpect.spawn, index: int) -> None:
    child.expect(MENU)
    child.send(DOWN * index + ENTER)


def _answer(child: pexpect.spawn, prompt: str, keys: str = ENTER) -> None:
    child.expect(prompt)
    child.send(keys)


def _quit(child: pexpect.spawn) -> None:
    child.expect(MENU)
    child.send(CTRL_C)  # Ctrl-C at the main menu leaves
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_add_an_openai_provider_with_a_hidden_key(menu: tuple[pexpect.spawn, list[str]], emu: BackgroundEmulators,
                                                 cfg: Path, audit_file: Path) -> None:
    child, seen = menu
    _choose(child, 1)  # Add a provider
    _answer(child, "Kind of provider")  # openai, the first choice
    _answer(child, "Name:")  # "openai", the proposed name
    _answer(child, "Base URL:", CLEAR_LINE + emu.url("openai") + "/v1" + ENTER)
    _answer(child, "API key:")  # type it in, the first choice
    _answer(child, "Key \\(input hidden\\):", OPENAI_KEY + ENTER)
    _answer(child, "Check the provider now")
    child.expect("check passed")
    _answer(child, "Models to offer", " " + ENTER)  # tick the first listed model
    _answer(child, "capabilities shown")
    _answer(child, "Default model for chat ")
    _answer(child, "Default model for chatStream")
    child.expect(r"\+ providers\.openai\.secret: \[secret\] \(file\)")
    _answer(child, "Save these changes")
    child.expect("saved ")
    _quit(child)

    data = orjson.loads((cfg / "providers.json").read_bytes())
    key_file = cfg / "secrets" / "openai.key"
    assert data["providers"]["openai"]["secret"] == {"file": str(key_file)}
    assert data["providers"]["openai"]["models"] == [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]}]
    assert data["defaults"]["chat"] == {"provider": "openai", "model": "gpt-4o-mini"}
    assert key_file.read_text() == OPENAI_KEY
    assert [e["event"] for e in audit_lines(audit_file)] == ["provider_added"]
    leaks = [p for p in [*cfg.glob("providers.json*"), audit_file] if OPENAI_KEY in p.read_text()]
    assert leaks == []
    assert OPENAI_KEY not in "".join(seen)


def test_cancel_then_add_a_client(menu: tuple[pexpect.spawn, list[str]], cfg: Path, audit_file: Path) -> None:
    child, seen = menu
    _choose(child, 1)  # Add a provider ...
    _answer(child, "Kind of provider", CTRL_C)  # ... changed my mind
    child.expect("cancelled; nothing was saved")
    _choose(child, 5)  # Add a client
    _answer(child, "Client name:", "editor" + ENTER)
    _answer(child, "Tools it may call")
    _answer(child, "Providers it may use")
    _answer(child, "Expires in")
    _answer(child, "Calls per minute at most", "60" + ENTER)
    _answer(child, "Calls in flight at once at most")  # empty: no limit
    _answer(child, "Save these changes")
    child.expect(r"(llmc_[A-Za-z0-9_\-]{20,})")
    token = child.match.group(1)
    _quit(child)

    assert providers(cfg)["providers"]  # the folder was completed with the starter providers.json
    registry = orjson.loads((cfg / "client-registry.json").read_bytes())
    assert token_matches(token, registry["clients"]["editor"]["token_sha256"])
    assert registry["clients"]["editor"]["limits"] == {"requests_per_min": 60, "max_concurrency": None}
    assert [e["event"] for e in audit_lines(audit_file)] == ["client_added"]
    assert token not in audit_file.read_text() + (cfg / "client-registry.json").read_text()
    assert re.search("shown once|will not be shown again", "".join(seen))


def test_change_a_clients_limits(menu: tuple[pexpect.spawn, list[str]], cfg: Path, audit_file: Path) -> None:
    child, _ = menu
    _choose(child, 5)  # Add a client, with no limits
    _answer(child, "Client name:", "bot" + ENTER)
    for prompt in ("Tools it may call", "Providers it may use", "Expires in", "Calls per minute at most",
                   "Calls in flight at once at most", "Save these changes"):
        _answer(child, prompt)
    _choose(child, 6)  # Change a client's limits
    _answer(child, "Client whose limits to change")
    child.expect("bot: none")
    _answer(child, "Calls per minute at most", "off" + ENTER)  # "off" is the same as no limit
    _answer(child, "Calls in flight at once at most", "0" + ENTER)  # refused: the question stays
    child.expect("at most 1024")
    child.send(CLEAR_LINE + "3" + ENTER)
    child.expect(r"clients\.bot\.limits\.max_concurrency")
    _answer(child, "Save these changes")
    child.expect("saved ")
    _quit(child)

    registry = orjson.loads((cfg / "client-registry.json").read_bytes())
    assert registry["clients"]["bot"]["limits"] == {"requests_per_min": None, "max_concurrency": 3}
    assert [e["event"] for e in audit_lines(audit_file)] == ["client_added", "client_updated"]
