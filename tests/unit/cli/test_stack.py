"""One supervisord program template: the gateway's section in cli/supervisord.conf, and the
worker section ``cli.stack.write_worker_programs`` writes per provider (``_WORKER_PROGRAM``).

Nothing else in the repository spells a program section (the benchmark, UAT, the tests and
the runbook all run the stack through ``cli.stack`` or the sandbox), and a worker restarts
and logs under the same policy as the gateway, so the two cannot drift apart.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

from cli.config_folder import STARTER_PROVIDERS
from cli.stack import REPO_ROOT, SUPERVISORD_CONF, worker_program, write_worker_programs
from shared.config import ProvidersFile
from shared.settings import Settings

# Keys that differ by design: what runs, where it logs, start order, how long a stop may take.
_PER_PROGRAM = {"command", "directory", "priority", "stopwaitsecs", "stdout_logfile"}
_SKIPPED = {".git", ".venv", "node_modules", "__pycache__", "results"}
_TEXT = {".py", ".conf", ".md", ".ini", ".sh", ".txt", ".toml", ".json", ".yaml", ".yml", ".cfg"}
_SECTION = re.compile(r"^\[program:", re.MULTILINE)


def _sections(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=None)
    parser.read_string(text)
    return parser


def _repository_files() -> list[Path]:
    """Text files of the checkout; links (the root supervisord.conf is one to cli/) are not copies."""
    found = []
    for folder, subfolders, names in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if name not in _SKIPPED]
        found += [Path(folder, name) for name in names if Path(name).suffix in _TEXT]
    return [path for path in found if not path.is_symlink()]


def test_only_the_packaged_conf_and_the_worker_template_spell_a_program_section() -> None:
    spelled = sorted(str(path.relative_to(REPO_ROOT)) for path in _repository_files()
                     if _SECTION.search(path.read_text(encoding="utf-8", errors="replace")))
    assert spelled == ["cli/stack.py", "cli/supervisord.conf"]


def test_a_written_worker_program_keeps_the_gateways_restart_and_log_policy(tmp_path: Path) -> None:
    settings = Settings(config_dir=tmp_path / "config", run_dir=tmp_path / "run", log_dir=tmp_path / "logs")
    settings.run_dir.mkdir()
    providers = ProvidersFile.model_validate(STARTER_PROVIDERS)
    written = write_worker_programs(settings, providers)
    assert written == sorted(worker_program(name) for name in providers.providers)
    gateway = dict(_sections(SUPERVISORD_CONF.read_text(encoding="utf-8"))["program:gateway"])
    for name in providers.providers:
        program = worker_program(name)
        worker = dict(_sections((settings.run_dir / "workers.d" / f"{program}.conf").read_text())[f"program:{program}"])
        assert worker["command"].split()[-3:] == ["-m", "workers", name]
        assert {k: v for k, v in worker.items() if k not in _PER_PROGRAM} == \
               {k: v for k, v in gateway.items() if k not in _PER_PROGRAM}
