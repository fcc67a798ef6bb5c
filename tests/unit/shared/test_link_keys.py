"""Link key and CURVE certificate files: created private, refused when open, parsed strictly; link settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq.auth

from gateway.link_security import prepare_ipc_endpoint
from shared.link_keys import (
    KeyFileError,
    LinkSetupError,
    ensure_link_key,
    load_curve_client,
    load_curve_server,
    read_link_key,
)
from shared.settings import Settings
from tests.unit.link_fakes import make_curve_dir


def test_link_key_is_created_private_once_and_then_only_checked(tmp_path: Path) -> None:
    key_file = tmp_path / "new" / "deeper" / "link.key"
    assert ensure_link_key(key_file) is True
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.parent.parent.stat().st_mode) == 0o700
    key = read_link_key(key_file)
    assert len(key) == 32
    assert ensure_link_key(key_file) is False and read_link_key(key_file) == key  # never replaced
    key_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="open to group or others"):
        ensure_link_key(key_file)


def test_missing_link_key_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="llm-caller up"):
        read_link_key(tmp_path / "absent.key")


def test_curve_folder_loads_with_names_from_file_names(tmp_path: Path) -> None:
    curve = make_curve_dir(tmp_path / "curve")
    server = load_curve_server(curve)
    client = load_curve_client(curve, "openai")
    assert sorted(server.workers.values()) == ["anthropic", "openai"]
    assert server.workers[client.public] == "openai" and client.server_public == server.public
    assert server.secret.decode() not in repr(server) and client.secret.decode() not in repr(client)


def test_curve_files_are_refused_when_open_duplicated_or_misnamed(tmp_path: Path) -> None:
    curve = make_curve_dir(tmp_path / "curve")
    (curve / "workers" / "openai.key_secret").chmod(0o644)
    with pytest.raises(KeyFileError, match="open to group"):
        load_curve_client(curve, "openai")
    copy = (curve / "workers" / "openai.key").read_bytes()
    (curve / "workers" / "twin.key").write_bytes(copy)
    with pytest.raises(KeyFileError, match="same key"):
        load_curve_server(curve)
    (curve / "workers" / "twin.key").unlink()
    zmq.auth.create_certificates(curve / "workers", "Not-A-Name")
    with pytest.raises(KeyFileError, match="not a provider name"):
        load_curve_server(curve)


def test_worker_endpoint_setting(tmp_path: Path) -> None:
    base = {"LLMC_RUN_DIR": str(tmp_path)}
    assert Settings.from_env(base).worker_endpoint == f"ipc://{tmp_path}/workers.sock"
    assert not Settings.from_env(base).link_uses_curve
    tcp = Settings.from_env({**base, "LLMC_WORKER_ENDPOINT": "tcp://127.0.0.1:7001"})
    assert tcp.link_uses_curve and tcp.curve_dir == tmp_path / "curve"
    assert tcp.link_key_file == tmp_path / "link.key"
    for bad in ("udp://x", "tcp://127.0.0.1", "tcp://:80", "ipc://"):
        with pytest.raises(ValueError, match="LLMC_WORKER_ENDPOINT"):
            Settings.from_env({**base, "LLMC_WORKER_ENDPOINT": bad})


def test_ipc_socket_folder_must_be_private(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with pytest.raises(LinkSetupError, match="chmod 700"):
        prepare_ipc_endpoint(f"ipc://{open_dir}/w.sock")
    stale = tmp_path / "w.sock"
    stale.write_text("")
    prepare_ipc_endpoint(f"ipc://{stale}")
    assert not stale.exists()
