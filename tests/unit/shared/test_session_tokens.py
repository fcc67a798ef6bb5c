"""shared.session_tokens: genuine tokens verify; everything else is a SessionTokenError with a reason."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.link_auth import KeyFileError
from shared.session_tokens import (
    MAX_TTL_S,
    TOKEN_PREFIX,
    SessionTokenError,
    issue_session_token,
    load_session_key,
    session_binding,
    verify_session_token,
)

KEY = bytes(range(32))
NOW = 1_800_000_000.0
BINDING = session_binding("ab" * 32, 0)
_B64URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _token(client: str = "editor", transport: str = "http", ttl: float = 900, now: float = NOW) -> str:
    return issue_session_token(KEY, client, transport, ttl, now=now, binding=BINDING)  # type: ignore[arg-type]


def _refused(token: str, *, key: bytes = KEY, transport: str = "http", now: float = NOW) -> SessionTokenError:
    with pytest.raises(SessionTokenError) as caught:
        verify_session_token(key, token, transport=transport, now=now)
    return caught.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    body = token.removeprefix(TOKEN_PREFIX).split(".")[0]
    data: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return data


def test_round_trip() -> None:
    token = _token(transport="stdio", ttl=600)
    claims = verify_session_token(KEY, token, transport="stdio", now=NOW + 10)
    assert (claims.client_id, claims.transport) == ("editor", "stdio")
    assert claims.expires_at - claims.issued_at == 600 and claims.issued_at == int(NOW)
    assert token.startswith(TOKEN_PREFIX) and len(token) < 300  # fits comfortably in a header
    assert _token() != _token()  # each carries its own random id
    assert claims.token_id == _claims(token)["jti"]


def test_forged_signature() -> None:
    body = _token().split(".")[0]
    assert _refused(f"{body}.{_b64(secrets.token_bytes(32))}").reason == "signature"


def test_wrong_key() -> None:
    assert _refused(_token(), key=bytes(32)).reason == "signature"


def test_expired() -> None:
    error = _refused(_token(ttl=60), now=NOW + 60)
    assert error.reason == "expired" and "expired" in str(error)


def test_not_yet_valid() -> None:
    assert _refused(_token(now=NOW + 3600)).reason == "not_yet_valid"


def test_small_clock_difference_is_tolerated() -> None:
    verify_session_token(KEY, _token(now=NOW + 2), transport="http", now=NOW)


def test_token_for_http_is_refused_on_stdio() -> None:
    error = _refused(_token(transport="http"), transport="stdio")
    assert error.reason == "transport" and "bound to http" in str(error)


def test_rebinding_the_transport_in_the_payload_breaks_the_signature() -> None:
    body, signature = _token(transport="http").split(".")
    claims = _claims(body)
    claims["trn"] = "stdio"
    rebound = TOKEN_PREFIX + _b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)) + "." + signature
    assert _refused(rebound, transport="stdio").reason == "signature"


@pytest.mark.parametrize(("claim", "value"), [("sub", "admin"), ("exp", int(NOW) + MAX_TTL_S * 30),
                                              ("iat", int(NOW) - 10)])
def test_altered_payload(claim: str, value: object) -> None:
    body, signature = _token().split(".")
    claims = _claims(body)
    claims[claim] = value
    altered = TOKEN_PREFIX + _b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS)) + "." + signature
    assert _refused(altered).reason == "signature"


def test_other_prefix_is_refused() -> None:
    token = _token()
    assert _refused("llmc_" + token.removeprefix(TOKEN_PREFIX)).reason == "format"


def test_signed_but_malformed_claims_are_format_errors() -> None:
    # Only an issuer bug could produce these, but they must still fail cleanly.
    from shared.session_tokens import _mac  # the signing step alone, to sign arbitrary claims

    malformed: list[object] = [{"v": 2}, [],
                               {"v": 2, "sub": "a", "trn": ["x"], "iat": 1, "exp": 2, "jti": "j", "bnd": "b"},
                               {"v": 2, "sub": "a", "trn": "http", "iat": 5, "exp": 5, "jti": "j", "bnd": "b"},
                               {"v": 2, "sub": "a", "trn": "http", "iat": 1, "exp": 5, "jti": "j", "bnd": 7},
                               {"v": 1, "sub": "a", "trn": "http", "iat": 1, "exp": 5, "jti": "j"}]
    for claims in malformed:
        signed = TOKEN_PREFIX + _b64(orjson.dumps(claims))
        assert _refused(f"{signed}.{_b64(_mac(KEY, signed))}").reason == "format"


@pytest.mark.parametrize("garbage", ["", "llmcs_", "llmcs_.", "llmcs_abc", "llmcs_a.b.c", "llmcs_ab=.cd",
                                     "llmcs_abc.!!!", "llmcs_é.abc", "x" * 5000, "Bearer llmcs_abc.def"])
def test_garbage_input(garbage: str) -> None:
    assert _refused(garbage).reason in {"format", "signature"}


def test_non_text_input() -> None:
    assert _refused(b"llmcs_abc.def").reason == "format"  # type: ignore[arg-type]


def test_non_canonical_signature_spelling_is_refused() -> None:
    body, signature = _token().split(".")
    # 32 bytes take 43 characters whose last one carries 2 unused bits; setting one gives
    # another spelling of the same bytes, which must not be a second valid token.
    last = _B64URL_CHARS.index(signature[-1])
    respelled = signature[:-1] + _B64URL_CHARS[last | 1]
    assert respelled != signature
    assert _refused(f"{body}.{respelled}").reason == "format"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ttl_s": 0}, "ttl"), ({"ttl_s": MAX_TTL_S + 1}, "ttl"), ({"client_id": "Bad Name"}, "client"),
    ({"transport": "sse"}, "transport"), ({"key": b"short"}, "key"), ({"binding": "not one!"}, "binding"),
])
def test_issue_refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"key": KEY, "client_id": "editor", "transport": "http", "ttl_s": 60,
                               "binding": BINDING, **kwargs}
    with pytest.raises(ValueError, match=message):
        issue_session_token(**args)  # type: ignore[arg-type]


def test_max_ttl_is_allowed() -> None:
    claims = verify_session_token(KEY, _token(ttl=MAX_TTL_S), transport="http", now=NOW)
    assert claims.expires_at - claims.issued_at == MAX_TTL_S


def test_messages_never_quote_the_token() -> None:
    token = _token()
    body, signature = token.split(".")
    for error in (_refused(token, key=bytes(32)), _refused(token, now=NOW + 10_000),
                  _refused(token, transport="stdio")):
        assert body[len(TOKEN_PREFIX):][:12] not in str(error) and signature[:12] not in str(error)


def test_load_session_key(tmp_path: Path) -> None:
    key_file = tmp_path / "gateway.session.secret"
    key_file.write_text(KEY.hex() + "\n")
    key_file.chmod(0o600)
    assert load_session_key(key_file) == KEY
    key_file.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_session_key(key_file)


# ---- properties -----------------------------------------------------------------------


@given(st.text(max_size=400))
def test_random_strings_never_verify(text: str) -> None:
    for candidate in (text, TOKEN_PREFIX + text):
        with pytest.raises(SessionTokenError):
            verify_session_token(KEY, candidate, transport="http", now=NOW)


@given(st.text(alphabet=_B64URL_CHARS, min_size=1, max_size=300),
       st.text(alphabet=_B64URL_CHARS, min_size=1, max_size=60))
def test_well_shaped_random_tokens_never_verify(body: str, signature: str) -> None:
    with pytest.raises(SessionTokenError):
        verify_session_token(KEY, f"{TOKEN_PREFIX}{body}.{signature}", transport="http", now=NOW)


@given(st.data())
def test_changing_any_one_character_breaks_the_token(data: st.DataObject) -> None:
    token = _token()
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[position]))
    with pytest.raises(SessionTokenError):
        verify_session_token(KEY, token[:position] + replacement + token[position + 1:], transport="http",
                             now=NOW)
