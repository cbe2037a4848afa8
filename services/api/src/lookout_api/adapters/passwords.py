"""Password hashing with argon2id (argon2-cffi's tuned defaults).

Hashing costs tens of milliseconds of CPU on purpose, so it runs in a thread and never
blocks the event loop.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the response time the same,
# so a login cannot tell which e-mail addresses have accounts.
_DUMMY_HASH = _hasher.hash("lookout-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


class Argon2Passwords:
    """ports.PasswordHasher with argon2id."""

    async def hash(self, password: str) -> str:
        return await hash_password(password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await verify_password(stored_hash, password)
