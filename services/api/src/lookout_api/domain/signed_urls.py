"""Short-lived signed image URLs: ``?exp=<unix seconds>&sig=<hex>`` opens one image route
of one stream until ``exp``, without credentials (an ``<img src>`` in another page).

The signature is HMAC-SHA256 over the tenant, the stream, the route kind and ``exp``, so a
signature never opens another stream, another route or another tenant's frame, and a
changed ``exp`` breaks it (the signing contract itself is ``lookout_shared.signed_urls``).
Pure rules: no I/O.
"""

from __future__ import annotations

import hmac
import uuid

from lookout_shared.signed_urls import Kind, signature

from lookout_api.domain.errors import Forbidden, InvalidInput

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 86_400
SIG_HEX_LENGTH = 64


class BadSignature(Forbidden):
    title = "Invalid signed URL"


def check_ttl(ttl_seconds: int) -> None:
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl_seconds: from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}")


def verify(
    key: bytes,
    tenant_id: uuid.UUID,
    stream_id: uuid.UUID,
    kind: Kind,
    exp: str,
    sig: str,
    now: float,
) -> None:
    """Raise BadSignature (403) unless ``sig`` signs exactly this and ``exp`` is ahead."""
    if not exp.isdigit() or len(exp) > 12:
        raise BadSignature("exp: the expiry of a signed URL, in Unix seconds")
    if int(exp) <= now:
        raise BadSignature("this signed URL has expired; ask for a new one")
    expected = signature(key, tenant_id, stream_id, kind, int(exp))
    if not hmac.compare_digest(expected.encode(), sig.lower().encode("ascii", "replace")):
        raise BadSignature("the signature does not match this stream and route")
