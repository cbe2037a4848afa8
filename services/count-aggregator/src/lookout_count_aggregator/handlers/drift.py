"""Compare the counts in Redis with Postgres: the ``check`` command and the periodic check.

Events reach Redis a moment after their rows are committed, so a difference seen once may
be an event in flight. A check therefore looks again after a short settle time and reports
only what differs both times, with the same values.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from lookout_shared.drift_report import DriftReport

from lookout_count_aggregator import metrics
from lookout_count_aggregator.domain.drift import PLATFORM, Drift, label_of
from lookout_count_aggregator.domain.tally import differences, platform_of
from lookout_count_aggregator.ports import CountHashes, EntityStates

log = logging.getLogger(__name__)


async def compare(
    states: EntityStates, hashes: CountHashes, tenants: Sequence[uuid.UUID] | None
) -> list[Drift]:
    """Every count that differs now: of these tenants, or of every tenant and the platform."""
    expected = await states.grouped_counts(tenants)
    scopes: dict[str, Counter[str]] = {}
    if tenants is None:
        for t in {*await states.tenant_ids(), *expected}:
            scopes[str(t)] = expected.get(t, Counter())
        async for tenant in hashes.tenants():
            scopes.setdefault(tenant, Counter())
    else:
        for t in tenants:
            scopes[str(t)] = expected.get(t, Counter())
    targets = sorted(scopes.items())
    if tenants is None:
        targets.append((PLATFORM, platform_of(expected.values())))
    drifts = []
    for scope, want in targets:
        have = await hashes.counts(None if scope == PLATFORM else scope)
        drifts += [
            Drift(scope, f, sql, redis) for f, (sql, redis) in differences(want, have).items()
        ]
    return drifts


async def check(
    states: EntityStates,
    hashes: CountHashes,
    tenants: Sequence[uuid.UUID] | None = None,
    settle_seconds: float = 0.0,
) -> list[Drift]:
    """The counts that differ, and still differ the same way after ``settle_seconds``."""
    drifts = await compare(states, hashes, tenants)
    if not drifts or settle_seconds <= 0:
        return drifts
    await asyncio.sleep(settle_seconds)
    again = set(await compare(states, hashes, tenants))
    return [d for d in drifts if d in again]


class DriftMonitor:
    """Checks every ``interval`` seconds: a random sample of tenants, or everything."""

    def __init__(
        self,
        states: EntityStates,
        hashes: CountHashes,
        interval: float,
        mode: Literal["sampled", "full"],
        sample: int,
        settle_seconds: float,
    ) -> None:
        self._states = states
        self._hashes = hashes
        self.interval = interval
        self.mode = mode
        self.sample = sample
        self.settle_seconds = settle_seconds
        self._exported: set[tuple[str, str]] = set()

    async def check_once(self) -> list[Drift]:
        tenants: list[uuid.UUID] | None = None
        if self.mode == "sampled":
            tenants = await self._states.sample_tenants(self.sample)
        drifts = await check(self._states, self._hashes, tenants, self.settle_seconds)
        self._record(drifts)
        # For the dashboard (operators' page): counts only, no tenant ids.
        report = DriftReport(time.time(), self.mode, len({d.scope for d in drifts}), len(drifts))
        await self._hashes.save_drift_report(report)
        metrics.DRIFT_CHECKS.labels(outcome="drift" if drifts else "match").inc()
        if drifts:
            scopes = sorted({d.scope for d in drifts})
            log.warning(
                "counts drift from Postgres; run `lookout-count-aggregator rebuild`",
                extra={"scopes": scopes[:20], "fields": len(drifts)},
            )
        return drifts

    def _record(self, drifts: Sequence[Drift]) -> None:
        """Export one check's result; fields that no longer drift go back to 0."""
        totals: Counter[tuple[str, str]] = Counter()
        for d in drifts:
            kind = PLATFORM if d.scope == PLATFORM else "tenant"
            totals[(kind, label_of(d.field))] += abs(d.sql - d.redis)
        for labels in self._exported - set(totals):
            metrics.DRIFT.labels(*labels).set(0)
        for labels, value in totals.items():
            metrics.DRIFT.labels(*labels).set(value)
        self._exported.update(totals)
        metrics.DRIFT_SCOPES.set(len({d.scope for d in drifts}))
        metrics.DRIFT_LAST_CHECK.set(time.time())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.DRIFT_CHECKS.labels(outcome="failed").inc()
                log.warning("drift check failed: %r", exc)
