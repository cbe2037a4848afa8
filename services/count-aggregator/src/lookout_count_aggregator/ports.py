"""The ports the handlers need; adapters/ holds the real ones and their in-memory twins."""

from __future__ import annotations

import uuid
from typing import Protocol

from lookout_shared.envelope import Envelope

from lookout_count_aggregator.domain.contributions import Contribution


class CountStore(Protocol):
    async def apply(self, event_id: uuid.UUID, contribution: Contribution) -> dict[str, int]:
        """Apply one event atomically and idempotently; return the tenant's changed fields
        with their new values (empty when the event was a duplicate or stale)."""
        ...


class ChangeSink(Protocol):
    def record(self, scope: str, changes: dict[str, int]) -> None:
        """Note changed counts of a scope, to be announced (debounced)."""
        ...


class EnvelopePublisher(Protocol):
    async def publish_envelope(self, envelope: Envelope) -> None: ...
