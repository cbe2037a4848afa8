"""What every client connection goes through, WebSocket or SSE: a slot under the per-user
cap, a place in the hub, a close at token expiry, and the slot given back at the end."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from lookout_shared.tokens import Principal

from lookout_notifier import metrics
from lookout_notifier.bootstrap import Notifier
from lookout_notifier.domain.connection import Connection
from lookout_notifier.ports import Transport

log = logging.getLogger(__name__)


async def open_session(
    notifier: Notifier, principal: Principal, transport: Transport
) -> Connection | None:
    """A registered connection, or None when the user already holds every slot."""
    settings = notifier.settings
    conn = Connection(principal, transport, settings.send_queue_size, settings.max_unsent_bytes)
    if not await notifier.slots.acquire(
        principal.user_id, conn.id, settings.max_connections_per_user
    ):
        metrics.REFUSED.labels("connection_cap").inc()
        return None
    notifier.hub.connect(conn)
    conn.expire_at(principal.expires_at)
    return conn


async def end_session(notifier: Notifier, conn: Connection) -> None:
    """Out of the hub at once; the slot given back (or left to lapse if Redis is away)."""
    conn.ended()
    notifier.hub.disconnect(conn)
    try:
        await notifier.slots.release(conn.principal.user_id, conn.id)
    except Exception:  # the lease lapses by itself
        log.warning("could not release a connection slot", exc_info=True)


@contextlib.asynccontextmanager
async def session(
    notifier: Notifier, principal: Principal, transport: Transport
) -> AsyncIterator[Connection | None]:
    conn = await open_session(notifier, principal, transport)
    try:
        yield conn
    finally:
        if conn is not None:
            await end_session(notifier, conn)
