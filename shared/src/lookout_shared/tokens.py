"""Access tokens: JWTs the api issues and every service verifies without a database query.

The algorithm is pinned (HS256) and ``exp``, ``iss`` and ``aud`` are required, so a token
signed with ``none``, another key or for another audience is refused. A token also carries
its user's token version (``ver``): the api compares it with the account's current one
before any write, so a change of role, tenant or password, or a deletion, ends the token's
write power at once; reads that need no account check trust the token until it expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

Role = Literal["superuser", "admin", "operator", "viewer"]
ALGORITHM = "HS256"
ROLES: tuple[Role, ...] = ("superuser", "admin", "operator", "viewer")
# Tokens verified recently, kept so a client's next request skips the decode (pure-Python
# base64 and JSON work that costs more than a cached read). Bounded; cleared when full.
# A plain dict, not cachetools: each entry expires with its own token, which TTLCache (one
# TTL for all) cannot express, and TLRUCache, which can, costs about four times a dict hit
# (0.85 against 0.2 microseconds) on a lookup every authenticated request makes.
VERIFIED_MAX = 10_000
# The token version of a new account (the users table's default).
FIRST_VERSION = 1


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. Exactly a superuser has no tenant: a principal of any other
    role without one cannot be built, so no check downstream can mistake it for one that
    may read every tenant."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID | None  # None only for a platform superuser
    role: Role
    expires_at: datetime
    # The account's token version when the token was issued (0: a token without one).
    version: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if (self.role == "superuser") != (self.tenant_id is None):
            raise ValueError("only a superuser acts without a tenant, and a superuser has none")

    @property
    def is_superuser(self) -> bool:
        return self.role == "superuser"

    def can_see_tenant(self, tenant_id: uuid.UUID | None) -> bool:
        return self.is_superuser or (tenant_id is not None and tenant_id == self.tenant_id)


@dataclass(frozen=True)
class TokenCodec:
    secret: str = field(repr=False)
    issuer: str
    audience: str
    # token -> its principal; only tokens that passed verification get here, and a hit is
    # still refused once the token expires.
    _verified: dict[str, Principal] = field(default_factory=dict, compare=False, repr=False)

    def issue(
        self,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        role: Role,
        ttl: timedelta,
        version: int = FIRST_VERSION,
    ) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "tid": str(tenant_id) if tenant_id else None,
            "role": role,
            "ver": version,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > datetime.now(UTC):
                return known
            del self._verified[token]
        principal = self._decode(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            tenant = claims.get("tid")
            version = claims.get("ver", 0)
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidToken("the token version is not an integer")
            # Principal refuses an unknown role, and a role that does not match the tenant.
            return Principal(
                user_id=uuid.UUID(claims["sub"]),
                tenant_id=uuid.UUID(tenant) if tenant else None,
                role=claims["role"],
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                version=version,
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from None
