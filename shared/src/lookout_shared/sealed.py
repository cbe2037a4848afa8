"""Secrets kept encrypted at rest: webhook signing secrets, sealed by the api and opened by
the notifier, which signs with them.

Fernet (the ``cryptography`` package) rather than hand-made AES: it authenticates the
ciphertext, carries its own version and IV, and is what the library recommends for this.
The key comes from ``LOOKOUT_WEBHOOK_SECRETS_KEY``, else from the JWT secret; either way it
goes through HKDF so the stored value never depends on the raw setting's shape.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lookout_shared.settings import ServiceSettings

__all__ = ["InvalidToken", "Sealer", "sealer_for"]


class Sealer:
    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"lookout webhook secrets"
        ).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plain: str) -> bytes:
        return self._fernet.encrypt(plain.encode())

    def open(self, sealed: bytes) -> str:
        """The plain secret; raises InvalidToken when the key changed or the value was altered."""
        return self._fernet.decrypt(sealed).decode()


def sealer_for(settings: ServiceSettings) -> Sealer:
    key = settings.webhook_secrets_key or settings.jwt_secret
    return Sealer(key.get_secret_value())
