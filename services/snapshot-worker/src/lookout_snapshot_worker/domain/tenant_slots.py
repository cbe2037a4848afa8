"""Fair shares of a worker's slots between tenants.

A worker runs a bounded number of captures (and of probes) at once. Without shares, one
tenant whose cameras never answer fills every slot for the length of its timeouts, and every
other tenant's command waits behind it.

The rule: in one worker, a tenant holds at most ``share`` of a kind's slots, where share is
``max(1, floor(slots * LOOKOUT_TENANT_SHARE))``. A command of a tenant at its share waits in
the worker up to ``LOOKOUT_TENANT_WAIT_SECONDS`` for one of that tenant's slots; if none
frees, the command is published again at the back of its queue (with a confirm) and only
then is the delivery acked, so nothing is lost (a crash in between leaves a duplicate, which
the handlers ignore).

Why not simply wait: RabbitMQ delivers at most ``prefetch`` unacked commands to a worker,
and commands waiting for their tenant's slot fill that window; nothing else would be
delivered, so another tenant's command would still wait behind them. Why not nack with
requeue: a quorum queue counts every return against the delivery limit (a command that never
failed would be dead-lettered) and redelivers it at once, a hot loop. So the window must be
larger than the share (the defaults: prefetch 10 for 8 capture slots, share 4), and a
command from another tenant reaches the worker within the wait.

Limits: shares are per worker (with W workers a tenant may run W x share captures at once);
a share bounds each tenant, not their number, so 1/LOOKOUT_TENANT_SHARE misbehaving tenants
can still fill a worker; and a long backlog of one tenant queued ahead of another's command
is passed over at about (prefetch - share) commands per wait.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass


def tenant_limit(slots: int, share: float) -> int:
    """How many of ``slots`` one tenant may hold: the fraction ``share``, at least one."""
    return max(1, int(slots * share))


@dataclass
class _Share:
    slots: asyncio.Semaphore
    users: int = 0  # holders and waiters: the entry goes when nobody needs it
    waiting: int = 0


class TenantSlots:
    """At most ``limit`` slots per tenant (None: commands that name no tenant share one)."""

    def __init__(self, slots: int, share: float) -> None:
        self.limit = tenant_limit(slots, share)
        self._shares: dict[uuid.UUID | None, _Share] = {}

    @property
    def tenants(self) -> int:
        """Tenants with a command running or waiting (an entry lives only that long)."""
        return len(self._shares)

    def running(self, tenant: uuid.UUID | None) -> int:
        share = self._shares.get(tenant)
        return 0 if share is None else share.users - share.waiting

    async def acquire(self, tenant: uuid.UUID | None, wait: float) -> bool:
        """Take one of ``tenant``'s slots, waiting at most ``wait`` seconds; False if none
        freed in time."""
        share = self._shares.setdefault(tenant, _Share(asyncio.Semaphore(self.limit)))
        share.users += 1
        share.waiting += 1
        acquired = False
        try:
            async with asyncio.timeout(wait):
                await share.slots.acquire()
            acquired = True
        except TimeoutError:
            pass
        finally:  # timed out or cancelled: this command no longer needs the entry
            share.waiting -= 1
            if not acquired:
                self._leave(tenant, share)
        return acquired

    def release(self, tenant: uuid.UUID | None) -> None:
        share = self._shares[tenant]
        share.slots.release()
        self._leave(tenant, share)

    def _leave(self, tenant: uuid.UUID | None, share: _Share) -> None:
        share.users -= 1
        if share.users == 0:
            del self._shares[tenant]
