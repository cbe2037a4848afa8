"""The baseline for ``bench_notifier``: python-socketio rooms doing the notifier's fan-out.

Served by uvicorn with websockets-sansio and no compression (the notifier: uvicorn with its
own ``/ws`` protocol class); same input (its own queue on ``lookout.events``, declared and
consumed by the shared broker adapter exactly as the notifier's: a quorum instance queue,
envelopes validated) and the same room mapping; a client
joins a room with ``42["join","<room>"]`` and is answered ``42["joined","<room>"]``. It does less than the
notifier: no token, no tenant filter, no seq, no history in Redis. In the REST write rows it
is fed exactly like the notifier: the api's outbox relay publishes the writes' events to
``lookout.events``, and this process's queue receives them.

Run: ``python -m bench.notifier_socketio_peer <port>``.
"""

from __future__ import annotations

import os
import sys

import socketio  # type: ignore[import-untyped]
import uvicorn
from lookout_notifier.domain.routing import rooms_for
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope


def build(amqp_url: str) -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
    broker = Broker(amqp_url, producer="bench-socketio")

    @sio.event  # type: ignore[untyped-decorator]
    async def join(sid: str, room: str) -> None:
        await sio.enter_room(sid, room)
        await sio.emit("joined", room, to=sid)

    async def on_event(envelope: Envelope) -> None:
        for delivery in rooms_for(envelope):
            room = str(delivery.room)
            frame = {
                "room": room,
                "type": envelope.type,
                "entity_id": str(envelope.entity_id),
                "data": envelope.data,
            }
            await sio.emit("event", frame, room=room)

    async def startup() -> None:
        await broker.connect()
        await broker.consume_events(("#",), on_event, 64)

    async def shutdown() -> None:
        await broker.close()

    return socketio.ASGIApp(sio, on_startup=startup, on_shutdown=shutdown)


def main() -> None:
    port = int(sys.argv[1])
    app = build(os.environ["LOOKOUT_AMQP_URL"])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
