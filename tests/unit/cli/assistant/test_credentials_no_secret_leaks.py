"""After a realistic sequence of changes, no key or token is in any config file, backup, audit line or output."""

from __future__ import annotations

from pathlib import Path

from emulators.server import BackgroundEmulators
from tests.unit.cli.assistant.conftest import ANTHROPIC_KEY, OPENAI_KEY, Run, add_openai, audit_lines

ROTATED_KEY = "sk-second-openai-key-9876543210"
REJECTED_KEY = "sk-rejected-openai-key-5555555555"


def _files_to_scan(cfg: Path, audit_file: Path) -> list[Path]:
    key_files = set((cfg / "secrets").glob("*.key"))
    return [p for p in cfg.rglob("*") if p.is_file() and p not in key_files] + [audit_file]


def test_no_secret_anywhere_after_a_session(run: Run, emu: BackgroundEmulators, cfg: Path, audit_file: Path) -> None:
    outputs: list[str] = []
    tokens: list[str] = []

    def step(*argv: str, stdin: str | None = None, expect: int = 0) -> str:
        code, out, err = run(*argv, stdin=stdin)
        assert code == expect, err
        outputs.append(err)
        return out

    outputs.append(add_openai(run, emu, "openai", "--default", "chat=gpt-4o-mini")[1])
    outputs.append(step("config", "providers", "add", "anthropic", "--kind", "anthropic",
                        "--base-url", emu.url("anthropic"), "--model", "claude-sonnet-4-6", "--secret-stdin",
                        "--yes", stdin=ANTHROPIC_KEY + "\n"))
    outputs.append(step("config", "providers", "update", "openai", "--secret-stdin", "--yes",
                        stdin=REJECTED_KEY + "\n", expect=2))
    outputs.append(step("config", "providers", "update", "openai", "--secret-stdin", "--no-probe", "--yes",
                        stdin=ROTATED_KEY + "\n"))
    tokens.append(step("clients", "add", "editor", "--print-token").strip())
    tokens.append(step("clients", "rotate", "editor", "--print-token").strip())
    outputs.append(step("clients", "disable", "editor"))
    outputs.append(step("config", "providers", "remove", "anthropic", "--yes"))
    outputs.append(step("config", "rollback", "--yes"))
    outputs.append(step("config", "providers", "list", "--json"))
    outputs.append(step("config", "rollback", "--list"))

    assert all(t.startswith("llmc_") for t in tokens)
    secrets = [OPENAI_KEY, ANTHROPIC_KEY, ROTATED_KEY, REJECTED_KEY, *tokens]
    scanned = _files_to_scan(cfg, audit_file)
    assert any(p.name.endswith(".bak") for p in scanned) and audit_file in scanned
    for path in scanned:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {path}"
    joined = "\n".join(outputs)
    for secret in secrets:
        assert secret not in joined
    assert len(audit_lines(audit_file)) == 8  # every successful change, none of the refused one
    # The keys themselves are only in their own 0600 files.
    assert (cfg / "secrets" / "openai.key").read_text() == ROTATED_KEY
    assert (cfg / "secrets" / "anthropic.key").read_text() == ANTHROPIC_KEY
