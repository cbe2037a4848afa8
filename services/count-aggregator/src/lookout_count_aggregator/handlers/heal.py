"""Notices that Redis lost the counts and rebuilds them, while events keep flowing.

Every ``interval`` seconds, and at once when Redis answers again after an outage, the
healer checks the counts epoch (``lookout_shared.counts_epoch``). When it is missing (Redis
was flushed, or started empty) or was written by another Redis process (a restart, whatever
snapshot it loaded, or a failover), the counts cannot be trusted: the api is already
counting in Postgres, and the healer runs a full rebuild (``rebuild.py``), which writes a
new epoch when it ends if Redis lost nothing meanwhile. With several replicas, one rebuilds
and the others see its lock and wait for the epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lookout_count_aggregator import metrics
from lookout_count_aggregator.handlers.rebuild import RebuildBusy, Rebuilder
from lookout_count_aggregator.ports import Epoch

log = logging.getLogger(__name__)


class CountsHealer:
    def __init__(self, epoch: Epoch, rebuilder: Rebuilder, interval: float) -> None:
        self._epoch = epoch
        self._rebuilder = rebuilder
        self.interval = interval
        self.trusted = False
        self._wake = asyncio.Event()
        self._failing = False

    def wake(self) -> None:
        """Check now (Redis just came back)."""
        self._wake.set()

    async def check_once(self) -> bool:
        """Whether the counts are trusted, after a rebuild if they were not."""
        if await self._epoch.current():
            self._set_trusted(True)
            return True
        self._set_trusted(False)
        log.warning(
            "the counts in Redis are not trusted (Redis was flushed, restarted or failed "
            "over); rebuilding them from Postgres"
        )
        started = time.monotonic()
        try:
            report = await self._rebuilder.run()
        except RebuildBusy:
            metrics.HEALS.labels("busy").inc()
            log.info("another rebuild is running; waiting for its epoch")
            return False
        except Exception:
            metrics.HEALS.labels("failed").inc()
            raise
        if report.epoch is None:
            metrics.HEALS.labels("superseded").inc()
            log.warning("Redis lost state again while the counts were rebuilt; rebuilding again")
            return False
        seconds = time.monotonic() - started
        metrics.HEALS.labels("healed").inc()
        metrics.LAST_HEAL_SECONDS.set(seconds)
        log.warning(
            "counts rebuilt from Postgres in %.1fs; serving them again",
            seconds,
            extra={"tenants": report.tenants, "entities": report.entities},
        )
        self._set_trusted(True)
        return True

    def _set_trusted(self, trusted: bool) -> None:
        self.trusted = trusted
        metrics.COUNTS_TRUSTED.set(1 if trusted else 0)

    async def run(self) -> None:
        """Check and heal until cancelled."""
        while True:
            try:
                healed = await self.check_once()
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                healed = False
                self._set_trusted(False)
                # Once per streak: while Redis is down this fails every interval.
                level = logging.INFO if self._failing else logging.WARNING
                log.log(level, "counts epoch check or rebuild failed: %r", exc)
                self._failing = True
            self._wake.clear()
            # Not trusted yet (another replica rebuilds, or Redis lost state again): look
            # again soon rather than a whole interval later.
            wait = self.interval if healed else min(self.interval, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
