"""Webhook delivery for the notifier: events from the shared ``notifier.webhooks`` queue
(each one handled by one instance: competing consumers), and the replays and test-fires
that the api queues in ``webhook_deliveries``.

At least once: the event is acked only after every matching hook got it or had its failure
recorded (listed by the api, replayable). Only the event's own tenant's hooks match.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from lookout_shared.envelope import Envelope
from lookout_shared.sealed import InvalidToken, Sealer

from lookout_notifier.domain import webhooks
from lookout_notifier.domain.webhooks import Hook, Outcome
from lookout_notifier.ports import WebhookSender, WebhookStore

log = logging.getLogger(__name__)
CLAIM_BATCH = 20
# A 'sending' row untouched this long belongs to an instance that died; claim it again.
STALE_SENDING_SECONDS = 600.0


@dataclass
class Dispatcher:
    db: WebhookStore
    sender: WebhookSender
    sealer: Sealer

    async def on_event(self, envelope: Envelope) -> None:
        if envelope.tenant_id is None:
            return  # platform-wide events belong to no tenant's hooks
        hooks = await self.db.hooks_for(envelope.tenant_id, envelope.type)
        if not hooks:
            return
        body = webhooks.body_of(envelope)
        outcomes = await asyncio.gather(*(self._send(h, envelope.id, body) for h in hooks))
        for hook, outcome in zip(hooks, outcomes, strict=True):
            if outcome.error is not None:
                log.warning(
                    "webhook %s: event %s not delivered after %d attempt(s): %s",
                    hook.id,
                    envelope.id,
                    outcome.attempts,
                    outcome.error,
                )
                await self.db.record_failure(
                    hook, envelope.id, envelope.type, body, outcome.attempts, outcome.error
                )

    async def _send(self, hook: Hook, event_id: uuid.UUID, body: str) -> Outcome:
        try:
            secret = self.sealer.open(hook.secret_sealed)
        except InvalidToken:
            return Outcome(0, "the signing secret cannot be opened (was the key changed?)")
        return await self.sender.deliver(hook.url, secret, event_id, hook.id, body)

    async def replay_once(self) -> int:
        claimed = await self.db.claim(CLAIM_BATCH, STALE_SENDING_SECONDS)
        for pending in claimed:
            outcome = await self._send(pending.hook, pending.event_id, pending.body)
            await self.db.settle(pending.id, outcome.attempts, outcome.error)
        return len(claimed)

    async def replay_forever(self, interval: float) -> None:
        """Replay queued deliveries every ``interval`` for the life of the process. Periodic
        work, not a retry loop: a failed round is just the next round, so it is no tenacity."""
        while True:
            try:
                if await self.replay_once() == CLAIM_BATCH:
                    continue  # more may be waiting
            except Exception:  # Postgres away: try again next round
                log.warning("could not replay webhook deliveries", exc_info=True)
            await asyncio.sleep(interval)
