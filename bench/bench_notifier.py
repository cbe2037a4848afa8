"""Notifier fan-out against python-socketio rooms doing the same fan-out, in the same run.

Both servers run as their own OS process under uvicorn, one worker, fed by their own queue
on ``lookout.events``: the notifier as it ships (its logging and tracing, ``/ws`` served by
its own protocol class), the peer with uvicorn's websockets-sansio
(``bench.notifier_servers``). Clients are a minimal asyncio WebSocket protocol (no frame
parsing beyond the header), so the client side costs little and the same for both.

Rows: publish → frame latency with 1,000 subscribed clients (10 per stream), events
published straight to ``lookout.events``; REST write → frame latency with 1,000 subscribed
clients, all in one stream room and 10 per stream, where the api (``lookout-api``, its own
process, with its outbox relay) is in the path: each write is a ``PATCH`` of a stream's
name, committed with its ``stream.updated`` event in the outbox, relayed to RabbitMQ and
fanned out (10 per stream: both servers subscribed at once to the same writes; all in one
room: one at a time); deliveries per second to 5,000 clients in one room; resident memory per idle
subscribed connection at 10,000 connections. ``BENCH_SCALE=small``: 100 / 500 / 1,000.

Run: ``python -m bench.bench_notifier`` with the stack's ``LOOKOUT_*`` variables set.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from lookout_shared.broker import Broker

from bench.notifier_api import Api, run_api
from bench.notifier_scenarios import (
    IDLE_CLIENTS,
    LATENCY_CLIENTS,
    LATENCY_EVENTS,
    LATENCY_RATE,
    PAIRED_WRITES,
    REST_RATE,
    REST_WRITES,
    ROOM_CLIENTS,
    ROUND_WRITES,
    SMALL,
    WATCHERS_PER_STREAM,
    idle_memory,
    latency,
    rest_latency,
    room_throughput,
)
from bench.notifier_servers import raise_open_files, serve
from bench.report import Row, percentile, publish


@dataclass
class Figures:
    latency: list[float]
    rest_one_room: list[float]
    rest_per_stream: list[float]
    deliveries_per_s: float
    kib_per_connection: float


async def measure(name: str, broker: Broker) -> Figures:
    # Each scenario gets a fresh server, so one scenario's leftovers never weigh on another.
    async with serve(name) as server:
        memory = await idle_memory(server, broker)
    async with serve(name) as server:
        samples = await latency(server, broker)
    async with serve(name) as server:
        rate = await room_throughput(server, broker)
    print(f"{name}: done", flush=True)
    return Figures(samples, [], [], rate, memory)


async def rest_rounds(api: Api, figures: dict[str, Figures]) -> list[float]:
    """The REST rows; returns how long the api took to answer the per-stream row's PATCHes.

    10 per stream: both servers subscribed at once, so each write's event reaches both at
    the same moment and the api's and the relay's own variance is the same for both (run
    apart, each server's p99 carried the api's tail of other seconds). All in one room: one
    server at a time, in rounds that alternate which goes first, since there the peer spends
    about 200 ms per write, which would be the notifier's latency too if they shared the
    cores."""
    names = list(figures)
    for order in (names, names[::-1]):
        for name in order:
            async with serve(name) as server:
                (samples,) = await rest_latency([server], api, LATENCY_CLIENTS, ROUND_WRITES)
                figures[name].rest_one_room += samples
    async with serve(names[0]) as first, serve(names[1]) as second:
        api.answered.clear()
        paired = await rest_latency([first, second], api, WATCHERS_PER_STREAM, PAIRED_WRITES)
    for name, samples in zip(names, paired, strict=True):
        figures[name].rest_per_stream = samples
    return list(api.answered)


def lat(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms"


async def main() -> None:
    raise_open_files(IDLE_CLIENTS)
    broker = Broker(os.environ["LOOKOUT_AMQP_URL"], producer="bench")
    await broker.connect()
    try:
        ours = await measure("lookout-notifier", broker)
        peer = await measure("python-socketio", broker)
        async with run_api() as api:
            answered = await rest_rounds(api, {"lookout-notifier": ours, "python-socketio": peer})
    finally:
        await broker.close()
    p99 = percentile(ours.latency, 99)
    rest_p99 = percentile(ours.rest_one_room, 99)
    rows = [
        Row(
            f"publish → frame latency, {LATENCY_CLIENTS:,} subscribed clients",
            lat(ours.latency),
            "python-socketio rooms",
            lat(peer.latency),
            percentile(peer.latency, 99) / p99,
        ),
        Row(
            f"end-to-end latency, REST write → frame received, {LATENCY_CLIENTS:,} subscribed"
            " clients all in one stream room (worst case)",
            lat(ours.rest_one_room),
            "python-socketio rooms",
            lat(peer.rest_one_room),
            percentile(peer.rest_one_room, 99) / rest_p99,
        ),
        Row(
            f"end-to-end latency, REST write → frame received, {LATENCY_CLIENTS:,} subscribed"
            f" clients, {WATCHERS_PER_STREAM} per stream",
            lat(ours.rest_per_stream),
            "python-socketio rooms",
            lat(peer.rest_per_stream),
            percentile(peer.rest_per_stream, 99) / percentile(ours.rest_per_stream, 99),
        ),
        Row(
            f"deliveries/s, {ROOM_CLIENTS:,} clients in one room",
            f"{ours.deliveries_per_s:,.0f}/s",
            "python-socketio rooms",
            f"{peer.deliveries_per_s:,.0f}/s",
            ours.deliveries_per_s / peer.deliveries_per_s,
        ),
        Row(
            f"RSS per idle connection, {IDLE_CLIENTS:,} connections",
            f"{ours.kib_per_connection:.1f} KiB",
            "python-socketio rooms",
            f"{peer.kib_per_connection:.1f} KiB",
            peer.kib_per_connection / ours.kib_per_connection,
        ),
    ]
    notes = (
        f"Scale: {'small' if SMALL else 'full'}. Publish → frame: {LATENCY_EVENTS} events at "
        f"{LATENCY_RATE:.0f}/s published straight to lookout.events, {WATCHERS_PER_STREAM} "
        f"clients per stream (measured p99 {p99 * 1000:.1f} ms). REST write → frame: PATCHes "
        f"of a stream's name at {REST_RATE:.0f}/s sent to lookout-api (its own process), each "
        "committed with its stream.updated event in the outbox, published by the api's outbox "
        "relay (LISTEN/NOTIFY) and fanned out; timed from sending the request to each "
        "client's frame. The peer is fed the same way: same api, its own queue on "
        f"lookout.events. {WATCHERS_PER_STREAM} per stream: {PAIRED_WRITES} writes with both "
        f"servers running and subscribed at once ({LATENCY_CLIENTS:,} clients each), so every "
        "write reaches both at the same moment; the PATCH was answered in "
        f"{lat(answered)}, the api's share of the end-to-end time. All in one room (the worst "
        f"case, {LATENCY_CLIENTS:,} deliveries per write): {REST_WRITES} writes, one server at a "
        "time in two rounds that alternate which goes first (the peer's ~200 ms per write would "
        "otherwise be the notifier's latency too). The target (p99 < 25 ms at "
        f"{LATENCY_CLIENTS:,} subscribed clients) is measured with {WATCHERS_PER_STREAM} clients "
        f"per stream (measured p99 {percentile(ours.rest_per_stream, 99) * 1000:.1f} ms, with "
        f"the peer's {LATENCY_CLIENTS:,} clients served beside it); all in one room measured "
        f"p99 {rest_p99 * 1000:.1f} ms. Ratios: >1 means the notifier is better. The "
        "notifier also verifies a JWT per connection, checks the stream's tenant, numbers "
        "every frame in Redis and keeps the history; the peer does none of that. Both are "
        "one uvicorn process without compression (the notifier's /ws: its own protocol "
        "class; the peer's: websockets-sansio); clients are a minimal asyncio WebSocket "
        "protocol in the bench process."
    )
    publish("notifier", "Notifier fan-out vs python-socketio", rows, notes)


if __name__ == "__main__":
    asyncio.run(main())
