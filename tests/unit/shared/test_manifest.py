"""shared.manifest: what is covered, and every way a manifest can fail to match."""

from __future__ import annotations

import base64
import importlib.util
import os
import py_compile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.manifest import FORMAT, ManifestError, covered_files, sign_manifest, verify_manifest
from tests.unit.security_fakes import COVERED, SIGNED, bytecode_name

KeyPair = tuple[Path, Path]


@pytest.fixture
def signed(install: Path, keypair: KeyPair) -> Path:
    manifest = install / "manifest.json"
    sign_manifest(install, keypair[0], manifest)
    return manifest


def _verify(install: Path, manifest: Path, keypair: KeyPair) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        verify_manifest(install, manifest, keypair[1])
    return caught.value


def _edit(manifest: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = orjson.loads(manifest.read_bytes())
    change(data)
    manifest.write_bytes(orjson.dumps(data))


# ---- coverage -------------------------------------------------------------------------


def test_covers_code_root_files_and_providers_but_not_emulators_registry_or_tests(install: Path) -> None:
    assert list(covered_files(install)) == COVERED


def test_signing_compiles_every_module_as_checked_hash_bytecode_and_signs_it(
        install: Path, signed: Path) -> None:
    files = orjson.loads(signed.read_bytes())["files"]
    assert list(files) == SIGNED
    header = (install / bytecode_name("gateway/app.py")).read_bytes()[:16]
    assert int.from_bytes(header[4:8], "little") == 0b11  # hash-based, checked against the source


def test_importing_a_signed_installation_adds_no_file(install: Path, signed: Path, keypair: KeyPair) -> None:
    # What a running stack does: load every module the normal way (cache first), even
    # after something touched the sources (a timestamp-checked cache would be rewritten).
    for name in SIGNED:
        if name.endswith(".py") and name.split("/")[0] != "config":
            os.utime(install / name, (1_000_000_000, 1_000_000_000))
            spec = importlib.util.spec_from_file_location(name.replace("/", "_"), install / name)
            assert spec is not None and spec.loader is not None
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    verify_manifest(install, signed, keypair[1])


def test_manifest_lists_sorted_relative_paths_with_hashes_key_id_and_time(
        install: Path, keypair: KeyPair) -> None:
    when = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    result = sign_manifest(install, keypair[0], install / "manifest.json", now=when)
    data = orjson.loads((install / "manifest.json").read_bytes())
    assert set(data) == {"format", "created_at", "key_id", "files", "signature"}
    assert data["format"] == FORMAT and data["created_at"] == "2026-12-01T10:00:00Z"
    assert list(data["files"]) == SIGNED and all(len(h) == 64 for h in data["files"].values())
    assert data["key_id"] == result.key_id and len(result.key_id) == 32
    assert len(base64.b64decode(data["signature"])) == 64
    assert result.file_count == len(SIGNED)


def test_config_folder_elsewhere_is_named_config(install: Path, keypair: KeyPair, tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "providers.json").write_text('{"providers": {"x": 1}}')
    manifest = tmp_path / "m.json"
    sign_manifest(install, keypair[0], manifest, config_dir=elsewhere)
    verify_manifest(install, manifest, keypair[1], config_dir=elsewhere)
    (elsewhere / "providers.json").write_text('{"providers": {}}')
    with pytest.raises(ManifestError) as caught:
        verify_manifest(install, manifest, keypair[1], config_dir=elsewhere)
    assert caught.value.changed == ("config/providers.json",)


def test_sign_refuses_a_root_without_code(tmp_path: Path, keypair: KeyPair) -> None:
    with pytest.raises(ManifestError, match="no code found"):
        sign_manifest(tmp_path / "empty", keypair[0], tmp_path / "m.json")


def test_sign_refuses_a_private_key_others_can_read(install: Path, keypair: KeyPair) -> None:
    keypair[0].chmod(0o644)
    with pytest.raises(ManifestError, match="open to group or others"):
        sign_manifest(install, keypair[0], install / "manifest.json")
    assert not (install / "manifest.json").exists()


def test_sign_refuses_a_file_that_is_not_a_key(install: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a key")
    bogus.chmod(0o600)
    with pytest.raises(ManifestError, match="not an unencrypted PEM private key"):
        sign_manifest(install, bogus, install / "manifest.json")


# ---- verification ---------------------------------------------------------------------


def test_untouched_installation_verifies(install: Path, signed: Path, keypair: KeyPair) -> None:
    verify_manifest(install, signed, keypair[1])


def test_uncovered_files_may_change(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "config/client-registry.json").write_text('{"clients": {"new": {}}}')
    (install / "emulators/server.py").write_text("EMULATOR = 2\n")
    (install / "emulators/__pycache__").mkdir()
    (install / "emulators/__pycache__/server.cpython-311.pyc").write_text("x")
    verify_manifest(install, signed, keypair[1])


def _plant_bytecode(path: Path, source: str = "PLANTED = True\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    origin = path.with_name("planted_source.py")
    origin.write_text(source)
    py_compile.compile(str(origin), cfile=str(path), doraise=True)
    origin.unlink()


@pytest.mark.parametrize("planted", [
    "gateway/app/__init__.pyc",  # a package folder of bytecode shadows gateway/app.py
    "gateway/app.pyc",  # sourceless bytecode beside the source
    "shared/util/helpers.cpython-311-x86_64-linux-gnu.so",  # an extension module wins over the source
    "workers/__pycache__/orphan.cpython-311.pyc",  # bytecode without a source
    "workers/notes.md",  # not code at all: still unexpected
])
def test_any_unexpected_file_in_a_code_folder_is_named(install: Path, signed: Path, keypair: KeyPair,
                                                       planted: str) -> None:
    if planted.endswith(".pyc"):
        _plant_bytecode(install / planted)
    else:
        (install / planted).write_bytes(b"\x7fELF" if planted.endswith(".so") else b"notes")
    error = _verify(install, signed, keypair)
    assert error.added == (planted,) and not error.changed and not error.missing
    assert f"added (not in the manifest): {planted}" in str(error)


def test_forged_cache_entry_for_a_signed_module_is_named(install: Path, signed: Path, keypair: KeyPair) -> None:
    """A __pycache__ entry whose header matches its source is loaded: replacing one must fail verification."""
    cached = install / bytecode_name("gateway/app.py")
    _plant_bytecode(cached, "APP = 'planted'\n")
    error = _verify(install, signed, keypair)
    assert error.changed == (bytecode_name("gateway/app.py"),)


def test_changed_file_is_named(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "gateway/app.py").write_text("APP = 2  # tampered\n")
    error = _verify(install, signed, keypair)
    assert error.changed == ("gateway/app.py",) and not error.missing and not error.added
    assert "changed: gateway/app.py" in str(error)


def test_missing_file_is_named(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "shared/util/helpers.py").unlink()
    (install / "supervisord.conf").unlink()
    error = _verify(install, signed, keypair)
    assert error.missing == ("shared/util/helpers.py", "supervisord.conf")
    assert "missing: shared/util/helpers.py" in str(error)


def test_added_file_is_named(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "workers/backdoor.py").write_text("import os\n")
    error = _verify(install, signed, keypair)
    assert error.added == ("workers/backdoor.py",)
    assert "added (not in the manifest): workers/backdoor.py" in str(error)


def test_code_in_a_symlinked_folder_counts_as_added(install: Path, signed: Path, keypair: KeyPair,
                                                    tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("x = 1\n")
    (install / "gateway/plugins").symlink_to(outside, target_is_directory=True)
    (outside / "loop").symlink_to(outside, target_is_directory=True)  # must not walk forever
    assert _verify(install, signed, keypair).added == ("gateway/plugins/evil.py",)


def test_every_problem_is_listed_at_once(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "cli/main.py").write_text("changed\n")
    (install / "workers/runtime.py").unlink()
    (install / "shared/new.py").write_text("")
    error = _verify(install, signed, keypair)
    assert (error.changed, error.missing, error.added) == (("cli/main.py",), ("workers/runtime.py",),
                                                           ("shared/new.py",))


def test_missing_manifest(install: Path, keypair: KeyPair) -> None:
    error = _verify(install, install / "manifest.json", keypair)
    assert "manifest.json not found" in str(error) and "manifest sign" in str(error)


def test_unsigned_manifest(install: Path, signed: Path, keypair: KeyPair) -> None:
    _edit(signed, lambda data: data.pop("signature"))
    assert "is not signed" in str(_verify(install, signed, keypair))


def test_signature_from_another_key(install: Path, signed: Path, keypair: KeyPair,
                                    make_keypair: Callable[..., KeyPair], tmp_path: Path) -> None:
    other = make_keypair(tmp_path / "other")
    sign_manifest(install, other[0], signed)
    assert "signed by another key" in str(_verify(install, signed, keypair))


def test_another_keys_signature_with_a_forged_key_id(install: Path, signed: Path, keypair: KeyPair,
                                                     make_keypair: Callable[..., KeyPair],
                                                     tmp_path: Path) -> None:
    right_id = orjson.loads(signed.read_bytes())["key_id"]
    sign_manifest(install, make_keypair(tmp_path / "other")[0], signed)
    _edit(signed, lambda data: data.update(key_id=right_id))
    assert "invalid signature" in str(_verify(install, signed, keypair))


def test_corrupted_signature(install: Path, signed: Path, keypair: KeyPair) -> None:
    def flip(data: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(data["signature"]))
        raw[10] ^= 0x01
        data["signature"] = base64.b64encode(bytes(raw)).decode()

    _edit(signed, flip)
    assert "invalid signature" in str(_verify(install, signed, keypair))


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(b"short").decode(), 42])
def test_malformed_signature(install: Path, signed: Path, keypair: KeyPair, signature: object) -> None:
    _edit(signed, lambda data: data.update(signature=signature))
    message = str(_verify(install, signed, keypair))
    assert "malformed signature" in message or "unexpected layout" in message


def test_hashes_updated_by_hand_break_the_signature(install: Path, signed: Path, keypair: KeyPair) -> None:
    (install / "gateway/app.py").write_text("APP = 2\n")
    _edit(signed, lambda data: data["files"].update({"gateway/app.py": "0" * 64}))
    assert "invalid signature" in str(_verify(install, signed, keypair))


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"format": "other"}',
                                     b'{"format": "llm-caller-manifest/1", "signature": "", "files": []}'])
def test_garbage_manifest_is_a_manifest_error(install: Path, keypair: KeyPair, content: bytes) -> None:
    manifest = install / "manifest.json"
    manifest.write_bytes(content)
    _verify(install, manifest, keypair)


def test_missing_or_wrong_public_key(install: Path, signed: Path, keypair: KeyPair, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        verify_manifest(install, signed, tmp_path / "absent.pub.pem")
    with pytest.raises(ManifestError, match="not a PEM public key"):
        verify_manifest(install, signed, keypair[0])  # a private key where the public one belongs
