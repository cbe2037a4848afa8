"""Access tokens: what verifies, what does not, and that remembering verified tokens never
lets an expired or forged one through."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from lookout_shared.tokens import InvalidToken, Principal, TokenCodec

SECRET = "a-test-secret-that-is-long-enough-for-hs256-0123456789"


def codec() -> TokenCodec:
    return TokenCodec(SECRET, "lookout", "lookout-api")


def test_a_verified_token_is_remembered_and_answers_the_same_principal() -> None:
    tokens = codec()
    user, tenant = uuid.uuid4(), uuid.uuid4()
    token = tokens.issue(user, tenant, "viewer", timedelta(minutes=5))
    first = tokens.verify(token)
    assert (first.user_id, first.tenant_id, first.role) == (user, tenant, "viewer")
    assert tokens.verify(token) is first


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    tokens = codec()
    token = tokens.issue(uuid.uuid4(), uuid.uuid4(), "admin", timedelta(seconds=1))
    tokens.verify(token)
    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        tokens.verify(token)


def test_a_tampered_token_is_refused_even_after_the_real_one_verified() -> None:
    tokens = codec()
    token = tokens.issue(uuid.uuid4(), uuid.uuid4(), "viewer", timedelta(minutes=5))
    tokens.verify(token)
    header, payload, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "role": "admin"},
        "another-secret-that-is-long-enough-for-hs256-0123456789",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        tokens.verify(forged)
    with pytest.raises(InvalidToken):
        tokens.verify(f"{header}.{payload}.{signature[:-2]}xx")


def test_the_secret_never_shows_in_the_codec_repr() -> None:
    assert SECRET not in repr(codec())


@pytest.mark.parametrize(
    ("role", "tenant"),
    [("viewer", None), ("operator", None), ("admin", None), ("superuser", uuid.uuid4())],
)
def test_only_a_superuser_acts_without_a_tenant(role: str, tenant: uuid.UUID | None) -> None:
    """A correctly signed token whose role needs a tenant but names none is refused: it
    would otherwise read as a principal of every tenant."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": str(uuid.uuid4()), "role": role}
    claims["tid"] = str(tenant) if tenant else None
    claims |= {"iss": "lookout", "aud": "lookout-api", "iat": now, "exp": now + timedelta(1)}
    with pytest.raises(InvalidToken, match="tenant"):
        codec().verify(jwt.encode(claims, SECRET, algorithm="HS256"))
    with pytest.raises(ValueError, match="tenant"):
        Principal(uuid.uuid4(), tenant, role, now)  # type: ignore[arg-type]


def test_a_token_carries_its_account_version() -> None:
    tokens = codec()
    token = tokens.issue(uuid.uuid4(), uuid.uuid4(), "viewer", timedelta(minutes=5), version=7)
    assert tokens.verify(token).version == 7
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["ver"] = "7"
    with pytest.raises(InvalidToken):
        tokens.verify(jwt.encode(claims, SECRET, algorithm="HS256"))
