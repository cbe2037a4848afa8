"""Signed image URLs: the contract between the api, which checks them on its image routes,
and the services that hand them out (the api's own endpoint, the notifier's MQTT bridge).

``<public url>/api/v1/streams/<id>/latest.jpg?exp=<unix seconds>&sig=<hex>`` (or the latest
snapshot's image route) opens that one route of that one stream until ``exp``. The signature
is HMAC-SHA256 over the tenant, the stream, the route kind and ``exp``, with a key derived
from ``LOOKOUT_URL_SIGNING_KEY`` (or, unset, from the JWT secret, under its own label so a
URL signature is never a token signature). Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Literal

Kind = Literal["latest_jpg", "latest_snapshot"]
DERIVATION_LABEL = b"lookout signed image urls v1"
ROUTES: dict[Kind, str] = {
    "latest_jpg": "latest.jpg",
    "latest_snapshot": "snapshots/latest/image",
}


def derive_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), DERIVATION_LABEL, hashlib.sha256).digest()


def signature(key: bytes, tenant_id: uuid.UUID, stream_id: uuid.UUID, kind: Kind, exp: int) -> str:
    message = f"{tenant_id}|{stream_id}|{kind}|{exp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_url(
    public_url: str, key: bytes, tenant_id: uuid.UUID, stream_id: uuid.UUID, kind: Kind, exp: int
) -> str:
    sig = signature(key, tenant_id, stream_id, kind, exp)
    base = public_url.rstrip("/")
    return f"{base}/api/v1/streams/{stream_id}/{ROUTES[kind]}?exp={exp}&sig={sig}"
