"""The ports the handlers need; adapters/ holds the real ones and their in-memory twins."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lookout_shared.drift_report import DriftReport
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


# The rebuild and the drift check ------------------------------------------------------------


class EntityStates(Protocol):
    """The countable entities in Postgres (read only)."""

    async def tenant_ids(self) -> list[uuid.UUID]: ...

    async def sample_tenants(self, n: int) -> list[uuid.UUID]:
        """Up to ``n`` tenants at random."""
        ...

    async def count_rows(self, tenant_id: uuid.UUID | None = None) -> int:
        """How many entities a rebuild of the tenant (or of all) reads."""
        ...

    async def grouped_counts(
        self, tenants: Sequence[uuid.UUID] | None
    ) -> dict[uuid.UUID, Counter[str]]:
        """Per-tenant counts by the counting rules, over one snapshot."""
        ...

    def tenant_states(
        self, tenant_id: uuid.UUID, chunk: int
    ) -> AsyncGenerator[list[Contribution], None]:
        """The tenant's entity states in chunks, all from one snapshot (one repeatable-read
        transaction, open until the iterator ends or is closed)."""
        ...


class CountHashes(Protocol):
    """The count hashes as they are now, and the drift check's report beside them."""

    def tenants(self) -> AsyncIterator[str]:
        """Every tenant that has a count hash."""
        ...

    async def counts(self, tenant: str | None) -> dict[str, int]:
        """A tenant's counts, or the platform's when None."""
        ...

    async def save_drift_report(self, report: DriftReport) -> None: ...


class RebuildLock(Protocol):
    async def renew(self) -> None: ...

    async def release(self) -> None:
        """Let go; also when the lock was lost meanwhile (Redis flushed or restarted)."""
        ...


class RebuildTarget(Protocol):
    """Where a rebuild writes: a pending generation per tenant, swapped in at the end
    (see ``adapters/apply_events.lua`` for the generation rules)."""

    async def lock(self) -> RebuildLock | None:
        """The one rebuild lock, or None when another rebuild holds it."""
        ...

    async def begin_tenant(self, tenant: str) -> str:
        """Open the tenant's pending generation; every event applied from now on also moves
        its scratch counts. Returns the generation."""
        ...

    async def write_states(self, tenant: str, generation: str, states: list[Contribution]) -> int:
        """Write entity states into the pending generation; returns how many Redis already
        held at a newer version (those win)."""
        ...

    async def swap(self, tenant: str, generation: str) -> None:
        """Make the pending generation and its counts current, atomically."""
        ...

    async def sum_platform(self) -> None:
        """The platform hash as the exact sum of the tenant hashes."""
        ...


class Epoch(Protocol):
    """The counts epoch (``lookout_shared.counts_epoch``)."""

    async def current(self) -> str:
        """The id of the epoch the counts are exact under; '' when they are not trusted."""
        ...

    async def begin(self, token: str) -> str:
        """Open a full rebuild; returns what to hand to :meth:`finish`."""
        ...

    async def finish(self, token: str, run_id: str) -> bool:
        """Trust the counts under ``token``, if Redis lost nothing since :meth:`begin`."""
        ...


class Progress(Protocol):
    """Told a rebuild's total, then each chunk written; awaited, so it may pause the rebuild."""

    def start(self, total: int) -> None: ...

    async def advance(self, entities: int) -> None: ...
