"""In-memory twins of the ports, for unit tests. Same semantics as the Redis store."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence

from lookout_shared.drift_report import DriftReport
from lookout_shared.envelope import Envelope

from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.domain.tally import tally
from lookout_count_aggregator.ports import Applied, Outcome


class InMemoryCountStore:
    def __init__(self) -> None:
        self.seen: set[uuid.UUID] = set()
        self.entities: dict[tuple[str, uuid.UUID], tuple[int, frozenset[str]]] = {}
        self.tenants: dict[uuid.UUID, Counter[str]] = {}
        self.platform: Counter[str] = Counter()
        self.calls = 0  # apply_many calls: one per batch

    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        self.calls += 1
        applied = Applied()
        for event_id, c in events:
            outcome, changes = self._apply(event_id, c)
            applied.outcomes.append(outcome)
            applied.moved.append(bool(changes))
            applied.counts.setdefault(c.tenant_id, {}).update(changes)
        applied.counts = {t: counts for t, counts in applied.counts.items() if counts}
        return applied

    async def apply(self, event_id: uuid.UUID, contribution: Contribution) -> dict[str, int]:
        return self._apply(event_id, contribution)[1]

    def _apply(
        self, event_id: uuid.UUID, contribution: Contribution
    ) -> tuple[Outcome, dict[str, int]]:
        c = contribution
        if event_id in self.seen:
            return "duplicate", {}
        self.seen.add(event_id)
        key = (c.entity_type, c.entity_id)
        stored_version, old = self.entities.get(key, (-1, frozenset()))
        if stored_version >= c.version:
            return "stale", {}
        self.entities[key] = (c.version, c.fields)
        tenant = self.tenants.setdefault(c.tenant_id, Counter())
        changes = {}
        for field in old ^ c.fields:
            delta = 1 if field in c.fields else -1
            tenant[field] += delta
            self.platform[field] += delta
            changes[field] = tenant[field]
            # Only non-zero counts are kept, as in the Redis store.
            for counts in (tenant, self.platform):
                if counts[field] == 0:
                    del counts[field]
        return "applied", changes


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, int]]] = []

    def record(self, scope: str, changes: dict[str, int]) -> None:
        self.records.append((scope, changes))


class RecordingPublisher:
    def __init__(self, error: BaseException | None = None) -> None:
        self.published: list[Envelope] = []
        self.error = error

    async def publish_envelope(self, envelope: Envelope) -> None:
        if self.error is not None:
            raise self.error
        self.published.append(envelope)


class InMemoryStates:
    """Postgres's entities, as a list of states."""

    def __init__(self, states: Sequence[Contribution], tenants: Iterable[uuid.UUID] = ()) -> None:
        self.states = list(states)
        self.tenants = {*tenants, *(s.tenant_id for s in self.states)}

    async def tenant_ids(self) -> list[uuid.UUID]:
        return sorted(self.tenants)

    async def sample_tenants(self, n: int) -> list[uuid.UUID]:
        return sorted(self.tenants)[:n]

    async def count_rows(self, tenant_id: uuid.UUID | None = None) -> int:
        return sum(1 for s in self.states if tenant_id in (None, s.tenant_id))

    async def grouped_counts(
        self, tenants: Sequence[uuid.UUID] | None
    ) -> dict[uuid.UUID, Counter[str]]:
        return tally(s for s in self.states if tenants is None or s.tenant_id in tenants)

    async def tenant_states(
        self, tenant_id: uuid.UUID, chunk: int
    ) -> AsyncGenerator[list[Contribution], None]:
        mine = [s for s in self.states if s.tenant_id == tenant_id]
        for i in range(0, len(mine), chunk):
            yield mine[i : i + chunk]


class InMemoryHashes:
    """The count hashes: tenant id (None: the platform) -> counts."""

    def __init__(self, hashes: dict[str | None, dict[str, int]] | None = None) -> None:
        self.hashes = hashes or {}
        self.reports: list[DriftReport] = []

    async def tenants(self) -> AsyncIterator[str]:
        for tenant in list(self.hashes):
            if tenant is not None:
                yield tenant

    async def counts(self, tenant: str | None) -> dict[str, int]:
        return dict(self.hashes.get(tenant, {}))

    async def save_drift_report(self, report: DriftReport) -> None:
        self.reports.append(report)
