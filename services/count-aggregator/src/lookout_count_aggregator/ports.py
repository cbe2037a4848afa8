"""The ports the handlers need; adapters/ holds the real ones and their in-memory twins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from lookout_shared.envelope import Envelope

from lookout_count_aggregator.domain.contributions import Contribution


class CountStore(Protocol):
    async def apply_many(
        self, events: Sequence[tuple[uuid.UUID, Contribution]]
    ) -> list[dict[str, int]]:
        """Apply events in order, each atomically and idempotently (by event id); return,
        per event, the tenant's changed fields with their new values (empty when the event
        was a duplicate or stale)."""
        ...


class ChangeSink(Protocol):
    def record(self, scope: str, changes: dict[str, int]) -> None:
        """Note changed counts of a scope, to be announced (debounced)."""
        ...


class EnvelopePublisher(Protocol):
    async def publish_envelope(self, envelope: Envelope) -> None: ...
