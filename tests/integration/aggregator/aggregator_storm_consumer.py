"""The aggregator's consumer as an OS process for the redelivery storm test.

With ``STORM_KILL_AFTER=N`` it SIGKILLs itself right after the Redis write (of a batch) that
applies its N-th event, before that batch is acked: the broker redelivers it (and every other unacked message) to the next
incarnation. Run as a script: ``python aggregator_storm_consumer.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Sequence

from lookout_count_aggregator.bootstrap import bootstrap
from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.ports import Applied, CountStore
from lookout_count_aggregator.settings import AggregatorSettings


class DyingStore:
    def __init__(self, store: CountStore, kill_after: int) -> None:
        self._store = store
        self._left = kill_after

    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        changes = await self._store.apply_many(events)
        self._left -= len(events)
        if self._left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)  # written to Redis, not acked
        return changes


async def main() -> None:
    aggregator = await bootstrap(AggregatorSettings(drift_check_interval_seconds=0))
    kill_after = int(os.environ.get("STORM_KILL_AFTER", "0"))
    if kill_after:
        aggregator.store = DyingStore(aggregator.store, kill_after)
    await aggregator.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
