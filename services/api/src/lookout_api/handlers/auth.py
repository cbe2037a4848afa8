"""Logging in (rate-limited), and who a bearer token or API key stands for."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lookout_shared.tokens import VERIFIED_MAX, InvalidToken, Principal

from lookout_api.domain import access, api_keys, login_limits
from lookout_api.domain.access import KeyPrincipal
from lookout_api.domain.errors import Unauthorized
from lookout_api.handlers.redis_outage import log_unavailable
from lookout_api.ports import Deps, RedisUnavailable

log = logging.getLogger(__name__)
# An API key principal carries no expiry of its own; revocation is what ends it.
_NO_EXPIRY = datetime(9999, 1, 1, tzinfo=UTC)
REVOKED = "the API key is unknown or revoked"


async def login(deps: Deps, email: str, password: str, client_ip: str = "-") -> tuple[str, int]:
    """An access token and its lifetime in seconds; the same error for any bad credential.
    Rate-limited per client address and per e-mail (domain/login_limits.py)."""
    keys = _limit_keys(email, client_ip)
    await _check_limits(deps, keys)
    async with deps.db.connect() as session:
        user = await session.user_for_login(email)
    ok = await deps.passwords.verify(user["password_hash"] if user else None, password)
    if not ok or user is None:
        await _count_failure(deps, keys)
        raise Unauthorized("wrong e-mail or password")
    ttl = timedelta(minutes=deps.settings.access_token_minutes)
    token = deps.codec.issue(
        user["id"], user["tenant_id"], user["role"], ttl, version=user["token_version"]
    )
    return token, int(ttl.total_seconds())


@dataclass(frozen=True)
class _LimitKeys:
    address: tuple[object, ...]  # every attempt from the client address
    failures: tuple[object, ...]  # failures for the e-mail from the client address
    email: tuple[object, ...]  # failures for the e-mail from every address


def _limit_keys(email: str, client_ip: str) -> _LimitKeys:
    # Hash the e-mail: key names show up in Redis tooling, addresses should not.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return _LimitKeys(
        ("ratelimit", "login", "ip", client_ip),
        ("ratelimit", "login", "email-ip", digest, client_ip),
        ("ratelimit", "login", "email", digest),
    )


async def _check_limits(deps: Deps, keys: _LimitKeys) -> None:
    """Every attempt counts against the client address; only failures against the e-mail,
    so a user who types the right password is never limited by their own logins."""
    s = deps.settings
    try:
        attempts, attempts_wait = await deps.rates.hit(keys.address, s.login_ip_window_seconds)
        failures, failures_wait = await deps.rates.current(keys.failures)
        email_failures, _ = await deps.rates.current(keys.email)
    except RedisUnavailable as exc:
        # Fail open: logins keep working without Redis; argon2's cost still slows guessing.
        log_unavailable(log, "login rate limit unavailable: %r", exc)
        return
    limits = login_limits.LoginLimits(
        s.login_ip_limit, s.login_client_failure_limit, s.login_email_failure_limit
    )
    seen = login_limits.LoginCounters(
        attempts, attempts_wait, failures, failures_wait, email_failures
    )
    login_limits.check(limits, seen)


async def _count_failure(deps: Deps, keys: _LimitKeys) -> None:
    window = deps.settings.login_email_window_seconds
    try:
        await deps.rates.hit(keys.failures, window)
        await deps.rates.hit(keys.email, window)
    except RedisUnavailable as exc:
        log_unavailable(log, "login rate limit unavailable: %r", exc)


async def authenticate(deps: Deps, token: str) -> Principal:
    """A JWT is checked locally (no query); an API key by its hash, through the cache."""
    known = known_principal(deps, token)
    if known is not None:
        return known
    if not api_keys.is_api_key(token):
        raise Unauthorized("the access token is invalid or expired")
    digest = api_keys.digest(token)
    hit, key = deps.key_cache.get(digest)
    if not hit:
        epoch = deps.key_cache.epoch  # a revocation noticed during the query wins
        async with deps.db.connect() as session:
            row = await session.active_key(digest)
        key = dict(row) if row is not None else None
        deps.key_cache.put(digest, key, epoch)
    if key is None:
        raise Unauthorized(REVOKED)
    return _key_principal(key)


async def ensure_current(deps: Deps, principal: Principal) -> None:
    """Check ``principal`` against Postgres: the key is still live, or the token's account
    still exists with the role, tenant and token version the token names. Every write and
    every read of accounts, keys, audit and quotas passes here; stream reads do not, and
    trust a token until it expires."""
    async with deps.db.connect() as session:
        if isinstance(principal, KeyPrincipal):
            if not await session.key_is_live(principal.key_id):
                raise Unauthorized(REVOKED)
            return
        account = await session.user_standing(principal.user_id)
    access.still_current(principal, account)


def known_principal(deps: Deps, token: str) -> Principal | None:
    """The principal behind ``token`` when that needs no I/O (a valid JWT, or an API key
    this process has looked up recently); None otherwise, and for anything invalid: the
    caller then takes the full path, which answers the error."""
    if not api_keys.is_api_key(token):
        try:
            return deps.codec.verify(token)
        except InvalidToken:
            return None
    hit, key = deps.key_cache.get(api_keys.digest(token))
    return _key_principal(key) if hit and key is not None else None


def _key_principal(key: dict[str, Any]) -> KeyPrincipal:
    return KeyPrincipal(
        user_id=key["created_by"],
        tenant_id=key["tenant_id"],
        role=key["role"],
        expires_at=_NO_EXPIRY,
        key_id=key["id"],
    )


class KnownCallers:
    """The principal behind an ``Authorization`` header, remembered by the header's raw
    bytes, so a cached read pays one dict lookup and a clock read for its caller instead
    of a decode and a verification. Only verified JWTs are remembered, each refused again
    from the moment it expires (the check is made on every use); stream reads trust a
    token until then, as they do without this. API keys are looked up in the key cache
    every time, which a revocation clears at once on every process (api_key_cache.py).
    Bounded; cleared when full: a plain dict, not a cachetools cache, since this lookup is
    most of a cached read's authentication and a cachetools get costs several times it."""

    def __init__(self, max_entries: int = VERIFIED_MAX) -> None:
        self.max_entries = max_entries
        self._known: dict[bytes, tuple[Principal, float]] = {}

    def principal(self, deps: Deps, authorization: bytes) -> Principal | None:
        known = self._known.get(authorization)
        if known is not None:
            if known[1] > time.time():
                return known[0]
            del self._known[authorization]
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        principal = known_principal(deps, token)
        if principal is not None and not api_keys.is_api_key(token):
            if len(self._known) >= self.max_entries:
                self._known.clear()
            self._known[authorization] = (principal, principal.expires_at.timestamp())
        return principal
