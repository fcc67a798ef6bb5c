"""A real PostgreSQL server for the tests: started once per session, on 127.0.0.1, from the installed binaries.

``pg_server`` (session-scoped, registered in ``tests/conftest.py``) runs ``initdb`` and
``postgres`` from ``/usr/lib/postgresql/<version>/bin`` or ``PATH`` in a fresh folder under
``/tmp``, listening on a free port on 127.0.0.1 only (no Unix socket), with password
authentication (scram-sha-256) for the one superuser. The password is in a 0600 file,
as an operator's would be (``LLMC_STORE_PASSWORD_FILE``).

PostgreSQL refuses to run as root. The tests run as root here and in CI, so the server runs
as the unprivileged ``nobody`` (Python's ``subprocess`` switches user, group and clears the
supplementary groups in the child: the same as ``setpriv --reuid --regid --clear-groups``);
its data folder is made for that user. As any other user it runs as that user. It is
stopped (fast shutdown) and its folder deleted at the end of the session, and it dies with
the test process (``PR_SET_PDEATHSIG``) if that is killed. Where the binaries are absent the
tests that need it are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.hardening import prctl_pdeathsig
from shared.settings import StoreSettings

__all__ = ["PgServer", "find_binaries", "pg_server"]

_SEARCH = [*sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True), Path("/usr/local/pgsql/bin")]
_USER = "llmc"


def find_binaries() -> Path | None:
    """The folder with ``initdb`` and ``postgres``: the newest Debian-style install, else on ``PATH``."""
    for folder in _SEARCH:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres:
        return Path(os.path.realpath(initdb)).parent
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A running server: where it listens, and the password file a gateway would be given."""

    port: int
    password_file: Path
    folder: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def settings(self) -> StoreSettings:
        return StoreSettings(url=None, password_file=self.password_file)

    def fresh_database(self) -> tuple[str, StoreSettings]:
        """A new, empty database on this server: its URL (no password in it) and the settings to reach it."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name), self.settings()

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        password = self.password_file.read_text().strip()
        with psycopg.connect(host="127.0.0.1", port=self.port, user=_USER, dbname="postgres",
                             password=password, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # test-only statements, no values in them

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: roll back, close, exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as: ``nobody`` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _run_as(identity: tuple[int, int] | None) -> dict[str, object]:
    if identity is None:
        return {}
    return {"user": identity[0], "group": identity[1], "extra_groups": []}


def start(binaries: Path) -> PgServer:
    """initdb a fresh cluster in a private folder and start it on a free loopback port."""
    identity = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="llmc-pg-"))
    data, log_file = folder / "data", folder / "server.log"
    password = secrets.token_urlsafe(24)
    password_file = folder / "password"  # the client's copy, as an operator keeps it: 0600, ours
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    init_pw = folder / "initdb-password"
    init_pw.write_text(password + "\n")
    if identity is not None:
        os.chown(folder, *identity)
        os.chown(init_pw, *identity)
        log_file.touch()
        os.chown(log_file, *identity)
    folder.chmod(0o711)  # the server's user can reach its data; nobody else can list the folder
    init_pw.chmod(0o600)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", _USER, "--pwfile", str(init_pw),
                    "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, env=env, cwd=folder, **_run_as(identity))  # type: ignore[call-overload]
    init_pw.unlink()
    port = _free_port()
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # type: ignore[call-overload]
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
            preexec_fn=lambda: prctl_pdeathsig(signal.SIGTERM), **_run_as(identity))
    server = PgServer(port, password_file, folder, process, log_file)
    _wait_ready(server)
    return server


def _wait_ready(server: PgServer, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            server.stop()
            raise RuntimeError(f"postgres exited ({server.process.returncode}): {server.log_file.read_text()[-2000:]}")
        try:
            server.admin("SELECT 1")
            return
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed: "
                    "apt-get install postgresql to run the PostgreSQL store tests")
    server = start(binaries)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
