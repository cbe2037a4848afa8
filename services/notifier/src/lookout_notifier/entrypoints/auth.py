"""Where a client's bearer token may travel: header, subprotocol, or ``?token=``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BEARER_SUBPROTOCOL = "bearer"


@dataclass(frozen=True)
class Credentials:
    token: str | None
    subprotocol: str | None  # what to accept the handshake with


def credentials(
    headers: Mapping[str, str], subprotocols: Sequence[str], query: Mapping[str, str]
) -> Credentials:
    """The token from ``Authorization: Bearer``, else the subprotocol after ``bearer``
    (browsers cannot set headers on a WebSocket), else ``?token=``."""
    subprotocol = BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in subprotocols else None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credentials(value.strip(), subprotocol)
    if subprotocol is not None:
        index = list(subprotocols).index(BEARER_SUBPROTOCOL)
        if index + 1 < len(subprotocols):
            return Credentials(subprotocols[index + 1], subprotocol)
    return Credentials(query.get("token") or None, subprotocol)
