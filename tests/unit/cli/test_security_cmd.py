"""`llm-caller manifest | keys | token` run in-process with temporary folders."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import orjson
import pytest
import zmq.auth

from cli.security_cmd import key_files
from shared.link_auth import load_link_key
from shared.manifest import load_private_key, load_public_key
from shared.session_tokens import SessionTokenError, load_session_key, verify_session_token
from shared.tokens import hash_token, new_token
from tests.unit.security_fakes import SIGNED, Run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- keys generate --------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "files"), [
    ("manifest", {"manifest.key.pem": 0o600, "manifest.pub.pem": 0o644}),
    ("link", {"workers.link.secret": 0o600}),
    ("curve", {"gateway.key_secret": 0o600, "gateway.key": 0o644}),
    ("session", {"gateway.session.secret": 0o600}),
])
def test_keys_generate_writes_each_kind_with_its_modes(run: Run, tmp_path: Path, kind: str,
                                                       files: dict[str, int]) -> None:
    out = tmp_path / "deep" / "keys"
    code, stdout, _ = run("keys", "generate", "--kind", kind, "--out", str(out))
    assert code == 0
    assert {p.name: _mode(p) for p in out.iterdir()} == files
    assert _mode(out) == 0o700 and _mode(out.parent) == 0o700  # every folder it created
    for name in files:
        assert str(out / name) in stdout


def test_generated_keys_load_with_their_readers(run: Run, tmp_path: Path) -> None:
    for kind in ("manifest", "link", "curve", "session"):
        assert run("keys", "generate", "--kind", kind, "--out", str(tmp_path))[0] == 0
    assert load_private_key(tmp_path / "manifest.key.pem").public_key() == \
        load_public_key(tmp_path / "manifest.pub.pem")
    assert len(load_link_key(tmp_path / "workers.link.secret")) == 32
    assert len(load_session_key(tmp_path / "gateway.session.secret")) == 32
    public, secret = zmq.auth.load_certificate(tmp_path / "gateway.key_secret")
    assert zmq.auth.load_certificate(tmp_path / "gateway.key") == (public, None)
    assert secret is not None and zmq.curve_public(secret) == public


def test_keys_generate_never_prints_private_material(run: Run, tmp_path: Path) -> None:
    for kind in ("manifest", "link", "curve", "session"):
        _, stdout, stderr = run("keys", "generate", "--kind", kind, "--out", str(tmp_path))
        for path, mode in key_files(kind, folder=tmp_path).items():
            if mode == 0o600:
                secret_lines = [line for line in path.read_text().splitlines()
                                if line.strip() and not line.startswith(("#", "-----", "metadata", "curve",
                                                                          "    name", "    public-key"))]
                assert secret_lines
                assert not any(line.strip() in stdout + stderr for line in secret_lines)


def test_keys_generate_refuses_to_overwrite_without_force(run: Run, tmp_path: Path) -> None:
    assert run("keys", "generate", "--kind", "link", "--name", "openai", "--out", str(tmp_path))[0] == 0
    key_file = tmp_path / "openai.link.secret"
    before = key_file.read_bytes()
    code, _, stderr = run("keys", "generate", "--kind", "link", "--name", "openai", "--out", str(tmp_path))
    assert code == 2 and "already exist" in stderr and "--force" in stderr
    assert key_file.read_bytes() == before
    assert run("keys", "generate", "--kind", "link", "--name", "openai", "--out", str(tmp_path), "--force")[0] == 0
    assert key_file.read_bytes() != before and _mode(key_file) == 0o600


def test_keys_generate_refuses_when_half_a_pair_exists(run: Run, tmp_path: Path) -> None:
    (tmp_path / "manifest.pub.pem").write_text("old")
    code, _, stderr = run("keys", "generate", "--kind", "manifest", "--out", str(tmp_path))
    assert code == 2 and "manifest.pub.pem" in stderr
    assert not (tmp_path / "manifest.key.pem").exists()


@pytest.mark.parametrize("name", ["../escape", "Gateway", "a/b", ""])
def test_keys_generate_refuses_unsafe_names(run: Run, tmp_path: Path, name: str) -> None:
    code, _, stderr = run("keys", "generate", "--kind", "link", "--name", name, "--out", str(tmp_path))
    assert code == 2 and "invalid name" in stderr


def test_keys_generate_warns_about_an_open_existing_folder(run: Run, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    code, _, stderr = run("keys", "generate", "--kind", "session", "--out", str(tmp_path))
    assert code == 0 and "chmod 700" in stderr


# ---- manifest sign / verify -----------------------------------------------------------


def _sign(run: Run, install: Path, key: Path, *extra: str) -> tuple[int, str, str]:
    return run("manifest", "sign", "--key", str(key), "--root", str(install),
               "--config-dir", str(install / "config"), *extra)


def _verify(run: Run, install: Path, pub: Path, *extra: str) -> tuple[int, str, str]:
    return run("manifest", "verify", "--pubkey", str(pub), "--root", str(install),
               "--config-dir", str(install / "config"), *extra)


def test_sign_then_verify(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    code, stdout, _ = _sign(run, install, keypair[0])
    assert code == 0 and f"signed {len(SIGNED)} files" in stdout
    assert (install / "manifest.json").is_file() and _mode(install / "manifest.json") == 0o644
    code, stdout, _ = _verify(run, install, keypair[1])
    assert code == 0 and stdout.startswith(f"manifest OK: {len(SIGNED)} files")


def test_verify_names_each_problem_file(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    _sign(run, install, keypair[0])
    (install / "gateway/app.py").write_text("tampered\n")
    (install / "cli/main.py").unlink()
    (install / "workers/extra.py").write_text("")
    code, stdout, stderr = _verify(run, install, keypair[1])
    assert code == 1 and not stdout
    for line in ("changed: gateway/app.py", "missing: cli/main.py", "workers/extra.py"):
        assert line in stderr


def test_verify_with_another_key(run: Run, install: Path, keypair: tuple[Path, Path], tmp_path: Path) -> None:
    _sign(run, install, keypair[0])
    run("keys", "generate", "--kind", "manifest", "--name", "other", "--out", str(tmp_path / "other"))
    code, _, stderr = _verify(run, install, tmp_path / "other" / "other.pub.pem")
    assert code == 1 and "signed by another key" in stderr


def test_verify_without_a_manifest(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    code, _, stderr = _verify(run, install, keypair[1], "--manifest", str(install / "nope.json"))
    assert code == 1 and "nope.json not found" in stderr


def test_verify_an_unsigned_manifest(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    _sign(run, install, keypair[0], "--out", str(install / "m.json"))
    data = orjson.loads((install / "m.json").read_bytes())
    del data["signature"]
    (install / "m.json").write_bytes(orjson.dumps(data))
    code, _, stderr = _verify(run, install, keypair[1], "--manifest", str(install / "m.json"))
    assert code == 1 and "not signed" in stderr


def test_sign_with_an_open_private_key_is_refused(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    keypair[0].chmod(0o644)
    code, _, stderr = _sign(run, install, keypair[0])
    assert code == 2 and "chmod 600" in stderr and not (install / "manifest.json").exists()


def test_sign_warns_when_providers_json_is_absent(run: Run, install: Path, keypair: tuple[Path, Path]) -> None:
    (install / "config/providers.json").unlink()
    code, stdout, stderr = _sign(run, install, keypair[0])
    assert code == 0 and f"signed {len(SIGNED) - 1} files" in stdout and "no providers.json" in stderr


# ---- token issue ----------------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    now = int(time.time())

    def entry(**extra: object) -> dict[str, object]:
        return {"token_sha256": hash_token(new_token()), **extra}

    clients = {"editor": entry(), "off": entry(disabled=True), "gone": entry(expires_at=now - 10),
               "soon": entry(expires_at=now + 600)}
    (folder / "client-registry.json").write_bytes(orjson.dumps({"clients": clients}))
    return folder


@pytest.fixture
def session_key(run: Run, tmp_path: Path) -> Path:
    assert run("keys", "generate", "--kind", "session", "--out", str(tmp_path / "keys"))[0] == 0
    return tmp_path / "keys" / "gateway.session.secret"


def _issue(run: Run, config_dir: Path, key: Path, *extra: str) -> tuple[int, str, str]:
    return run("token", "issue", "--key", str(key), "--config-dir", str(config_dir), *extra)


def test_token_issue_prints_only_the_token(run: Run, config_dir: Path, session_key: Path) -> None:
    code, stdout, stderr = _issue(run, config_dir, session_key, "--client", "editor", "--ttl", "15m",
                                  "--transport", "stdio")
    assert code == 0
    token = stdout.strip()
    assert stdout == token + "\n" and token not in stderr and "editor" in stderr
    claims = verify_session_token(load_session_key(session_key), token, transport="stdio")
    assert claims.client_id == "editor" and claims.expires_at - claims.issued_at == 900
    with pytest.raises(SessionTokenError):
        verify_session_token(load_session_key(session_key), token, transport="http")


@pytest.mark.parametrize(("ttl", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)])
def test_token_ttl_units(run: Run, config_dir: Path, session_key: Path, ttl: str, seconds: int) -> None:
    code, stdout, _ = _issue(run, config_dir, session_key, "--client", "editor", "--ttl", ttl)
    claims = verify_session_token(load_session_key(session_key), stdout.strip(), transport="http")
    assert code == 0 and claims.expires_at - claims.issued_at == seconds


@pytest.mark.parametrize(("ttl", "message"), [("2d", "maximum"), ("25h", "maximum"), ("15", "not a duration"),
                                              ("0m", "not a duration"), ("1w", "not a duration")])
def test_token_ttl_refused(run: Run, config_dir: Path, session_key: Path, ttl: str, message: str) -> None:
    code, stdout, stderr = _issue(run, config_dir, session_key, "--client", "editor", "--ttl", ttl)
    assert code == 2 and not stdout and message in stderr


@pytest.mark.parametrize(("client", "message"), [
    ("nobody", "no client named 'nobody'"), ("off", "is disabled"), ("gone", "expired"),
    ("soon", "shorter --ttl"),
])
def test_token_issue_refuses_unusable_clients(run: Run, config_dir: Path, session_key: Path,
                                              client: str, message: str) -> None:
    code, stdout, stderr = _issue(run, config_dir, session_key, "--client", client, "--ttl", "1h")
    assert code == 2 and not stdout and message in stderr


def test_token_issue_within_a_clients_expiry(run: Run, config_dir: Path, session_key: Path) -> None:
    assert _issue(run, config_dir, session_key, "--client", "soon", "--ttl", "5m")[0] == 0


def test_token_issue_refuses_an_open_or_missing_key(run: Run, config_dir: Path, session_key: Path) -> None:
    session_key.chmod(0o644)
    code, stdout, stderr = _issue(run, config_dir, session_key, "--client", "editor", "--ttl", "5m")
    assert code == 2 and not stdout and "chmod 600" in stderr
    code, _, stderr = _issue(run, config_dir, session_key.with_name("absent"), "--client", "editor", "--ttl", "5m")
    assert code == 2 and "not found" in stderr


def test_token_issue_with_a_missing_registry(run: Run, tmp_path: Path, session_key: Path) -> None:
    code, stdout, stderr = _issue(run, tmp_path / "empty", session_key, "--client", "editor", "--ttl", "5m")
    assert code == 2 and not stdout and "client-registry.json" in stderr
