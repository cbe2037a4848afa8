"""The ports the handlers need; adapters/ holds the real ones and their in-memory twins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lookout_shared.envelope import Envelope

from lookout_count_aggregator.domain.contributions import Contribution

Outcome = Literal["applied", "duplicate", "stale"]


@dataclass
class Applied:
    """What a batch of events did to the counts."""

    outcomes: list[Outcome] = field(default_factory=list)  # per event, in order
    moved: list[bool] = field(default_factory=list)  # per event: whether a count moved
    # Per tenant: the new value of every field the batch moved (0: the field is gone).
    counts: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)


class CountStore(Protocol):
    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        """Apply events in order, each atomically and idempotently (by event id)."""
        ...


class ChangeSink(Protocol):
    def record(self, scope: str, changes: dict[str, int]) -> None:
        """Note changed counts of a scope, to be announced (debounced)."""
        ...


class EnvelopePublisher(Protocol):
    async def publish_envelope(self, envelope: Envelope) -> None: ...
