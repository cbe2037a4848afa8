"""Which count changes to announce, and when: at most one announcement per scope per
interval, carrying only the fields whose values differ from the last announcement."""

from __future__ import annotations

import math


class Debouncer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[str, dict[str, int]] = {}
        self._announced: dict[str, dict[str, int]] = {}
        self._last: dict[str, float] = {}

    def add(self, scope: str, changes: dict[str, int]) -> None:
        self._pending.setdefault(scope, {}).update(changes)

    def due(self, now: float) -> list[tuple[str, dict[str, int]]]:
        """Take the batches whose scope may announce now; they count as announced."""
        batches = []
        for scope in list(self._pending):
            if now - self._last.get(scope, -math.inf) < self.interval:
                continue
            changes = self._pending.pop(scope)
            announced = self._announced.setdefault(scope, {})
            fresh = {f: v for f, v in changes.items() if announced.get(f) != v}
            if fresh:
                announced.update(fresh)
                self._last[scope] = now
                batches.append((scope, fresh))
        return batches

    def restore(self, scope: str, changes: dict[str, int]) -> None:
        """Put back a batch that could not be announced; newer pending values win."""
        announced = self._announced.get(scope, {})
        for field, value in changes.items():
            if announced.get(field) == value:
                del announced[field]
        self._pending[scope] = {**changes, **self._pending.get(scope, {})}

    def wait_time(self, now: float) -> float | None:
        """Seconds until the next batch is due (0: now), or None when nothing is pending."""
        if not self._pending:
            return None
        return max(
            0.0,
            min(self._last.get(s, -math.inf) + self.interval - now for s in self._pending),
        )
