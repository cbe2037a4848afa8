"""The optional MQTT bridge for Home Assistant (on when ``LOOKOUT_MQTT_URL`` is set).

Events reach it through a per-instance queue (every instance publishes the same retained
state, which is idempotent). It keeps one MQTT connection per tenant it has seen, each with
a last will: ``<prefix>/<tenant>/availability`` goes ``offline`` (retained) when the
connection ends without a clean goodbye, and is ``online`` while it lasts.

aiomqtt (asyncio over paho-mqtt) rather than a hand-made client: MQTT 3.1.1/5 framing,
QoS 1 acknowledgements and wills are the library's, awaited like the rest of the service.
A failed publish drops that tenant's connection; the next event connects again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import unquote, urlsplit

import aiomqtt
import asyncpg
from lookout_shared.broker import Broker
from lookout_shared.envelope import Envelope
from lookout_shared.signed_urls import signed_url
from lookout_shared.storage import LocalStorage

from lookout_notifier.domain.mqtt_topics import Topics
from lookout_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
BRIDGED_EVENTS = ("stream.*", "snapshot.created", "counts.changed")
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # a larger snapshot is not sent over MQTT
ONLINE, OFFLINE = b"online", b"offline"


class Bridge:
    def __init__(
        self, settings: NotifierSettings, pool: asyncpg.Pool, storage: LocalStorage
    ) -> None:
        assert settings.mqtt_url is not None
        url = urlsplit(settings.mqtt_url.get_secret_value())
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 1883
        self._user = unquote(url.username) if url.username else None
        self._password = unquote(url.password) if url.password else None
        self._settings, self._pool, self._storage = settings, pool, storage
        self._clients: dict[uuid.UUID, tuple[aiomqtt.Client, AsyncExitStack]] = {}
        self._instance = uuid.uuid4().hex[:8]

    def topics(self, tenant: uuid.UUID) -> Topics:
        return Topics(self._settings.mqtt_prefix, self._settings.mqtt_discovery_prefix, tenant)

    async def _client(self, tenant: uuid.UUID) -> aiomqtt.Client:
        held = self._clients.get(tenant)
        if held is not None:
            return held[0]
        topics = self.topics(tenant)
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._user,
            password=self._password,
            identifier=f"lookout-{self._instance}-{tenant}",
            will=aiomqtt.Will(topics.availability, OFFLINE, qos=1, retain=True),
            keepalive=30,
        )
        stack = AsyncExitStack()
        await stack.enter_async_context(client)
        self._clients[tenant] = (client, stack)
        await client.publish(topics.availability, ONLINE, qos=1, retain=True)
        return client

    async def on_event(self, envelope: Envelope) -> None:
        tenant = envelope.tenant_id
        if envelope.type == "counts.changed":
            tenant = _uuid(envelope.data.get("scope"))
        if tenant is None:
            return
        messages = await self._messages(self.topics(tenant), envelope)
        if not messages:
            return
        try:
            client = await self._client(tenant)
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1, retain=True)
        except aiomqtt.MqttError:
            await self._drop(tenant)
            raise  # the event goes back to the queue and is tried again

    async def _messages(self, topics: Topics, envelope: Envelope) -> list[tuple[str, bytes]]:
        stream, data = envelope.entity_id, envelope.data
        if envelope.type in ("stream.created", "stream.updated"):
            configs = topics.discovery_configs(stream, str(data.get("name", stream)))
            attributes = {k: data.get(k) for k in ("kind", "enabled", "width", "height", "fps")}
            return [
                *((t, c.encode()) for t, c in configs.items()),
                (topics.stream(stream, "status"), str(data["status"]).encode()),
                (topics.stream(stream, "attributes"), json.dumps(attributes).encode()),
            ]
        if envelope.type == "stream.deleted":
            # An empty retained message removes the entity and the kept state.
            leaves = ("status", "attributes", "snapshot", "snapshot_url")
            entities = (
                topics.sensor_config(stream),
                topics.camera_config(stream),
                topics.image_config(stream),
            )
            return [(t, b"") for t in entities] + [
                (topics.stream(stream, leaf), b"") for leaf in leaves
            ]
        if envelope.type == "snapshot.created":
            image = await self._image(envelope.entity_id)
            stream_id = _uuid(data.get("stream_id"))
            if stream_id is None:
                return []
            url = self._signed_snapshot_url(topics.tenant, stream_id)
            messages = [(topics.stream(stream_id, "snapshot_url"), url.encode())]
            if image is not None:
                messages.append((topics.stream(stream_id, "snapshot"), image))
            return messages
        if envelope.type == "counts.changed":
            return [(topics.counts, json.dumps(data.get("changes", {})).encode())]
        return []

    def _signed_snapshot_url(self, tenant: uuid.UUID, stream: uuid.UUID) -> str:
        """The stream's latest snapshot image, opened without credentials until it expires
        (lookout_shared.signed_urls: the api checks it with the same key)."""
        settings = self._settings
        exp = int(time.time()) + settings.mqtt_image_url_ttl_seconds
        return signed_url(
            settings.public_url, settings.signing_key(), tenant, stream, "latest_snapshot", exp
        )

    async def _image(self, snapshot_id: uuid.UUID) -> bytes | None:
        row = await self._pool.fetchrow(
            "SELECT storage_key, size_bytes FROM snapshots WHERE id = $1", snapshot_id
        )
        if row is None or row["size_bytes"] > MAX_IMAGE_BYTES:
            return None
        with contextlib.suppress(OSError):  # deleted since: nothing to show
            return self._storage.path_of(row["storage_key"]).read_bytes()
        return None

    async def _drop(self, tenant: uuid.UUID) -> None:
        held = self._clients.pop(tenant, None)
        if held is not None:
            with contextlib.suppress(Exception):
                await held[1].aclose()

    async def close(self) -> None:
        """A clean stop: say offline ourselves (the will only fires on an unclean end)."""
        for tenant, (client, _) in list(self._clients.items()):
            with contextlib.suppress(Exception):
                await client.publish(self.topics(tenant).availability, OFFLINE, qos=1, retain=True)
            await self._drop(tenant)


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@contextlib.asynccontextmanager
async def running(
    settings: NotifierSettings, broker: Broker, pool: asyncpg.Pool
) -> AsyncIterator[Bridge]:
    bridge = Bridge(settings, pool, LocalStorage(settings.storage_dir))
    consumer = await broker.consume_events(BRIDGED_EVENTS, bridge.on_event, prefetch=16)
    try:
        yield bridge
    finally:
        await consumer.stop(grace=5.0)
        await bridge.close()
