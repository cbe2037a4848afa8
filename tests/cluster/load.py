"""The fault tier's steady, bounded load and its bookkeeping: REST writes and snapshot
requests alternating between the two api replicas, and one WebSocket subscriber per
notifier replica that resumes on the other replica when its own goes away."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from tests.cluster.conftest import Replicas

INTERVAL = 0.5  # one snapshot request (and every other tick one stream write) per interval


@dataclass
class Ledger:
    """What was acknowledged, and when deliveries reached a subscriber."""

    streams: list[str] = field(default_factory=list)  # 201-acknowledged stream writes
    jobs: dict[str, str] = field(default_factory=dict)  # 202-acknowledged job -> stream
    delivered_at: list[float] = field(default_factory=list)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time in [start, end] with no frame reaching any subscriber."""
        marks = [start, *sorted(t for t in self.delivered_at if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(marks))


@dataclass
class Subscriber:
    """One WebSocket client on the stream rooms; resumes with ``since``/``epoch``."""

    replicas: Replicas
    token: str
    rooms: list[str]
    notifier: str
    ledger: Ledger
    seen: dict[str, set[str]] = field(default_factory=dict)  # room -> succeeded job ids
    position: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    unrecovered: set[str] = field(default_factory=set)  # rooms told recovered: false
    reconnects: int = 0

    def ws_url(self) -> str:
        port = self.replicas.ports[self.notifier]
        return f"ws://127.0.0.1:{port}/ws?token={self.token}"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(self.ws_url(), open_timeout=5) as ws:
                    for room in self.rooms:
                        frame: dict[str, Any] = {"op": "subscribe", "room": room}
                        if room in self.position:
                            epoch, seq = self.position[room]
                            frame |= {"since": seq, **({"epoch": epoch} if epoch else {})}
                        await ws.send(json.dumps(frame))
                    await self._read(ws, stop)
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            if not stop.is_set():  # resume on the other replica
                self.reconnects += 1
                other = {"notifier-a": "notifier-b", "notifier-b": "notifier-a"}
                if other[self.notifier] in self.replicas.processes:
                    self.notifier = other[self.notifier]
                await asyncio.sleep(0.3)

    async def _read(self, ws: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                self._on(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))

    def _on(self, frame: dict[str, Any]) -> None:
        room = frame.get("room")
        if not isinstance(room, str):
            return
        if frame.get("op") in ("subscribed", "reset"):
            if frame.get("recovered") is False:
                self.unrecovered.add(room)
            self.position[room] = (frame.get("epoch"), int(frame.get("seq") or 0))
            return
        if "seq" in frame:
            self.position[room] = (frame.get("epoch"), int(frame["seq"]))
            if frame.get("type") == "snapshot_job.succeeded":
                self.seen.setdefault(room, set()).add(str(frame["entity_id"]))
                self.ledger.delivered_at.append(time.monotonic())


async def drive(
    replicas: Replicas,
    headers: dict[str, str],
    streams: list[str],
    video: str,
    ledger: Ledger,
    seconds: float,
) -> None:
    """Bounded load for ``seconds``: each tick one snapshot request on the next stream, every
    other tick one stream write; the two api replicas take turns. Failed requests are not
    acknowledged and so not counted."""
    apis = ["api-a", "api-b"]
    async with httpx.AsyncClient(timeout=5) as client:
        tick = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            live = [a for a in apis if a in replicas.processes]
            base = replicas.url(live[tick % len(live)])
            stream = streams[tick % len(streams)]
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post(f"{base}/api/v1/streams/{stream}/snapshots", headers=headers)
                if r.status_code == 202:
                    ledger.jobs[r.json()["job_id"]] = stream
            if tick % 2 == 0:
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.post(
                        f"{base}/api/v1/streams",
                        json={"name": f"load-{uuid.uuid4().hex[:8]}", "url": video},
                        headers=headers,
                    )
                    if r.status_code == 201:
                        ledger.streams.append(r.json()["id"])
            tick += 1
            await asyncio.sleep(INTERVAL)
