"""Counts computed directly from entity states (what a rebuild or a drift check needs)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable

from lookout_count_aggregator.domain.contributions import Contribution


def tally(states: Iterable[Contribution]) -> dict[uuid.UUID, Counter[str]]:
    """Per-tenant counts; only positive fields appear."""
    counts: dict[uuid.UUID, Counter[str]] = {}
    for state in states:
        counts.setdefault(state.tenant_id, Counter()).update(state.fields)
    return counts


def platform_of(tenants: Iterable[Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in tenants:
        total.update(counts)
    return total


def differences(expected: dict[str, int], actual: dict[str, int]) -> dict[str, tuple[int, int]]:
    """``field -> (expected, actual)`` for every field whose counts differ (absent = 0)."""
    return {
        field: (expected.get(field, 0), actual.get(field, 0))
        for field in sorted(set(expected) | set(actual))
        if expected.get(field, 0) != actual.get(field, 0)
    }
