"""The check every process runs before it imports anything else of ours.

Signed manifest: when the operator sets ``LLMC_MANIFEST_PUBKEY`` (a path to the Ed25519
public key), the gateway and every worker verify ``LLMC_MANIFEST_FILE`` (default
``manifest.json`` at the installation root) against the installed code and
providers.json, and refuse to start on any problem, naming the file. Enabled means fail
closed: a missing manifest or key is a refusal, never a warning. The switch lives in the
environment (set by the operator's service definition), not in providers.json, because
providers.json is one of the signed files: a switch inside it could be turned off by the
very edit the check exists to catch.

Order matters. ``refuse_start_unless_verified`` is the first statement of
``gateway/__main__.py`` and ``workers/__main__.py``: a module imported before the check
would run before being checked (a planted ``gateway/tracing/__init__.pyc`` did exactly
that). So this module imports only the standard library, and it loads the verifier,
``shared/manifest.py``, straight from its source file: no ``__pycache__`` entry, no
package folder or extension module planted beside it can stand in for the verifier.
Python has already run ``shared/__init__.py``, this module, the entry package's
``__init__.py`` and its ``__main__.py`` header by then (possibly from ``__pycache__``);
those hold no code beyond the check itself, and are the part a check run by the code it
checks cannot vouch for.

The verification runs in a child forked for it (only the standard library is loaded
then, and no thread runs): the signature code pulls in ``cryptography`` (~15 MB of RSS),
which would otherwise stay resident in the gateway and in every worker for their whole
life after a check made once. The child answers on a pipe and exits; an answer that
does not arrive whole (the child crashed or was killed) is a refusal: enabled stays
fail-closed.

A refusal exits with ``EX_CONFIG`` (78). supervisord is configured not to restart a
program that exits 78 (``exitcodes=78``, ``autorestart=unexpected``) and to give up after
three quick failures, and the reason is written to ``RUN_DIR/refusals/PROGRAM.txt``
(0600) where ``llm-caller status`` shows it. A start that passes removes that file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

__all__ = ["EX_CONFIG", "REFUSALS_DIR", "manifest_problem", "refusal_file", "refuse_start_unless_verified"]

# sysexits' EX_CONFIG: supervisord does not restart it (supervisord.conf: exitcodes=78).
EX_CONFIG = 78
REFUSALS_DIR = "refusals"
_ROOT = Path(__file__).resolve().parent.parent
_VERIFIER = _ROOT / "shared" / "manifest.py"
_PROGRAM = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The child's answer on the pipe: the first alone, or the second followed by the problem.
_PASSED, _PROBLEM = b"passed", b"problem:"


def _load_verifier() -> ModuleType:
    """``shared/manifest.py`` compiled from its source, never from bytecode or a look-alike module."""
    name = "shared.manifest"
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == _VERIFIER:
        return loaded
    source = _VERIFIER.read_bytes()
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(_VERIFIER))
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(_VERIFIER)
    sys.modules[name] = module  # dataclasses look their module up while the body runs
    try:
        exec(compile(source, str(_VERIFIER), "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def manifest_problem(config_dir: Path, env: Mapping[str, str] | None = None) -> str | None:
    """Why this installation must not start, or None (also None when the check is not enabled)."""
    env = os.environ if env is None else env
    public_key = env.get("LLMC_MANIFEST_PUBKEY", "").strip()
    if not public_key:
        return None  # not enabled: nothing is loaded, nothing is forked
    manifest = Path(env.get("LLMC_MANIFEST_FILE", "").strip() or _ROOT / "manifest.json")
    return _in_child(lambda: _verify(config_dir, Path(public_key), manifest))


def _verify(config_dir: Path, public_key: Path, manifest: Path) -> str | None:
    """The check itself (in the child): the verifier loaded from source, then the manifest verified."""
    try:
        verifier = _load_verifier()
    except (OSError, SyntaxError) as exc:
        return f"signed manifest check failed: cannot load the verifier {_VERIFIER} ({exc})"
    try:
        verifier.verify_manifest(_ROOT, manifest, public_key, config_dir=config_dir)
    except verifier.ManifestError as exc:
        return f"signed manifest check failed: {exc}"
    return None


def _in_child(check: Callable[[], str | None]) -> str | None:
    """``check()``'s answer, computed in a forked child that exits afterwards; no whole answer is a problem."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, then leave without running any of the parent's exit code
        os.close(read_end)
        code = 0
        try:
            answer = check()
            data = _PASSED if answer is None else _PROBLEM + answer.encode("utf-8", "replace")
        except BaseException as exc:  # whatever happens here, the parent hears of it and the child exits
            data, code = type(exc).__name__.encode("ascii", "replace"), 1
        try:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        if data == _PASSED:
            return None
        if data.startswith(_PROBLEM):
            return data.removeprefix(_PROBLEM).decode("utf-8", "replace")
    why = data.decode("ascii", "replace") or f"exit status {os.waitstatus_to_exitcode(status)}"
    return f"signed manifest check failed: the check did not finish ({why})"


def refusal_file(run_dir: Path, program: str) -> Path:
    """Where a refused start of ``program`` (a supervisord program name) leaves its reason."""
    return run_dir / REFUSALS_DIR / f"{program}.txt"


def refuse_start_unless_verified(program: str, label: str, env: Mapping[str, str] | None = None) -> None:
    """Exit 78 naming the problem if the manifest check is enabled and fails; else clear an old refusal.

    ``program`` is the supervisord program name (``gateway``, ``openai``...); ``label``
    prefixes the stderr line (``llm-caller gateway``). Reads LLMC_CONFIG_DIR and
    LLMC_RUN_DIR with the same defaults as ``shared.settings.Settings``.
    """
    env = os.environ if env is None else env
    config_dir = Path(env.get("LLMC_CONFIG_DIR", "config")).absolute()
    run_dir = Path(env.get("LLMC_RUN_DIR", "run")).absolute()
    program = program if _PROGRAM.fullmatch(program) else "unnamed"
    problem = manifest_problem(config_dir, env)
    if problem is None:
        with contextlib.suppress(OSError):
            refusal_file(run_dir, program).unlink(missing_ok=True)
        return
    print(f"{label}: {problem}", file=sys.stderr, flush=True)
    _record_refusal(refusal_file(run_dir, program), problem)
    raise SystemExit(EX_CONFIG)


def _record_refusal(path: Path, problem: str) -> None:
    """Best effort: the stderr line above is the record that always exists."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = f"{stamp} refused to start (exit {EX_CONFIG}): {problem}\n".encode()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
