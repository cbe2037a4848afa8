"""Snapshot-worker settings (``LOOKOUT_*`` environment variables).

Prefetch and concurrency defaults (README, "Snapshot worker: prefetch and concurrency"):
a capture is a long task (hundreds of milliseconds to seconds, mostly waiting on the
network), so each worker takes only a little more than it can run at once. A larger prefetch
would hoard commands on one worker while another sits idle (Celery's advice for long tasks:
a prefetch multiplier of 1); a prefetch of 1 with one slot leaves the process idle for every
network round trip. Captures and probes have separate slots (bulkheads), and one tenant
holds at most a share of each (domain/tenant_slots.py), so the prefetch must exceed that share.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lookout_shared.settings import ServiceSettings
from pydantic import Field, model_validator

from lookout_snapshot_worker.domain.tenant_slots import tenant_limit


class WorkerSettings(ServiceSettings):
    service_name: str = "snapshot-worker"
    # At most this many captures at once per process, each by a warm capture child
    # (adapters/capture_pool.py), of which there are never more. Captures mostly wait on I/O,
    # so this can exceed the core count; a child's memory (~30-60 MB each) is the real bound.
    worker_concurrency: int = Field(default=8, ge=1)
    # Unacked capture commands per process: the slots plus a couple being loaded/committed
    # while ffmpeg runs, so no slot waits for a round trip to RabbitMQ or Postgres.
    worker_prefetch: int = Field(default=10, ge=1)
    # Probes have slots (and a prefetch) of their own: a flood of probes never starves captures.
    probe_concurrency: int = Field(default=2, ge=1)
    probe_prefetch: int = Field(default=4, ge=1)
    # Fairness (see domain/tenant_slots.py): one tenant may hold at most this fraction of a
    # worker's capture slots, and of its probe slots (at least one of each); 1 turns it off.
    tenant_share: float = Field(default=0.5, gt=0, le=1)
    # A command over its tenant's share waits this long in the worker for a slot of that
    # tenant, then goes to the back of the queue so other tenants' commands come in.
    tenant_wait_seconds: float = Field(default=1.0, ge=0)
    ffprobe_path: str = "ffprobe"
    ffmpeg_timeout_seconds: float = Field(default=20.0, gt=0)
    snapshot_max_width: int = Field(default=1920, ge=16)
    # Decoders refuse frames over this many pixels (default: 8K UHD, 7680x4320).
    ffmpeg_max_pixels: int = Field(default=7680 * 4320, ge=16 * 16)
    # Private memory (heap and anonymous mappings, RLIMIT_DATA) of each capture child, ffprobe
    # and hot stream reader;
    # 0 leaves it uncapped. An 8K frame needs ~270 MB, a 1080p one ~150 MB.
    ffmpeg_max_memory_mb: int = Field(default=512, ge=0)
    capture_attempts: int = Field(default=3, ge=1)
    # Base of the exponential, jittered backoff between attempts.
    capture_backoff_seconds: float = Field(default=0.5, ge=0)
    # Retention: only the newest N snapshots of each stream are kept.
    snapshots_per_stream: int = Field(default=100, ge=1)
    # Files older than this with no row are deleted by the orphan sweep (which spares
    # younger ones: their row may not be committed yet).
    orphan_sweep_interval_seconds: float = Field(default=3600.0, gt=0)
    orphan_grace_seconds: float = Field(default=600.0, ge=0)
    # Circuit breaker: after N consecutive failures a stream fails fast for a delay that
    # doubles each time it opens again, up to the maximum.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_base_delay_seconds: float = Field(default=30.0, gt=0)
    breaker_max_delay_seconds: float = Field(default=3600.0, gt=0)
    # On SIGTERM: stop taking commands, give in-flight ones this long, then hand them back.
    shutdown_grace_seconds: float = Field(default=15.0, ge=0)
    # The egress shim preloaded into every media child (adapters/egress.py); scripts/install.sh
    # and the image build it into the environment's lib folder. Without it nothing runs.
    egress_shim_path: str = str(Path(sys.prefix) / "lib" / "lookout_egress.so")

    # Hot streams (adapters/hot_pool.py): each is held by one worker, under a Redis lease of this
    # length, renewed every tick; a dead holder's streams move within about lease + tick +
    # one keyframe interval.
    hot_enabled: bool = True
    hot_lease_seconds: float = Field(default=3.0, gt=0)
    hot_tick_seconds: float = Field(default=1.0, gt=0)
    # At most this many hot streams per worker (each a reader process of ~30 MiB of its own
    # memory and ~8 ms of CPU a second for 720p H.264 in keyframe mode).
    hot_max_streams: int = Field(default=100, ge=0)
    # New readers started per tick (each costs ~0.1 s of CPU to start): a worker taking a
    # hundred streams at once ramps up over ten ticks instead of starving its own loop.
    hot_starts_per_tick: int = Field(default=10, ge=1)
    # A published frame lives this long in Redis: ~3x the expected keyframe interval.
    hot_frame_ttl_seconds: float = Field(default=6.0, gt=0)
    # A source silent this long is reopened.
    hot_stall_seconds: float = Field(default=8.0, gt=0)
    # Reconnects back off from this base up to the maximum; after N failed ones in a row
    # the stream is reported ``error``.
    hot_backoff_seconds: float = Field(default=0.5, ge=0)
    hot_backoff_max_seconds: float = Field(default=5.0, ge=0)
    hot_error_after: int = Field(default=3, ge=1)
    # A reader encodes and publishes at most one frame per interval: with every keyframe
    # (or, in mode "all", every frame) published, a source with short keyframe intervals
    # or a high frame rate would cost a JPEG each; 1 s keeps frames under 2 s old.
    hot_publish_interval_seconds: float = Field(default=1.0, ge=0)
    # A capture of a hot stream whose frame is younger than this stores that frame.
    hot_fresh_seconds: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _tick_renews_in_time(self) -> WorkerSettings:
        # Renewals every tick: a lease must survive two missed ones.
        if self.hot_tick_seconds * 3 > self.hot_lease_seconds:
            raise ValueError("LOOKOUT_HOT_TICK_SECONDS must be at most a third of the lease")
        return self

    @model_validator(mode="after")
    def _window_exceeds_share(self) -> WorkerSettings:
        # Commands waiting for their tenant's slot hold the prefetch window: if one tenant's
        # share could fill it, no other tenant's command would ever reach this worker.
        for name, slots, prefetch in (
            ("WORKER", self.worker_concurrency, self.worker_prefetch),
            ("PROBE", self.probe_concurrency, self.probe_prefetch),
        ):
            limit = tenant_limit(slots, self.tenant_share)
            if limit < slots and prefetch <= limit:
                raise ValueError(
                    f"LOOKOUT_{name}_PREFETCH ({prefetch}) must exceed one tenant's share of"
                    f" the slots ({limit}), or other tenants' commands cannot come in"
                )
        return self
