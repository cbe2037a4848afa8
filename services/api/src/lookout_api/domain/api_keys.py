"""API keys: ``lk_<random>``, shown once; only their SHA-256 is kept.

The secret has 256 bits of entropy, so a plain hash cannot be brute-forced and the lookup
stays one indexed equality (argon2 is for low-entropy passwords).
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "lk_"
SHOWN_PREFIX = 10  # characters kept in clear to recognise a key in a list


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def shown_prefix(secret: str) -> str:
    return secret[:SHOWN_PREFIX]
