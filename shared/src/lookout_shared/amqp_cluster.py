"""A robust AMQP connection over several RabbitMQ nodes.

``LOOKOUT_AMQP_URL`` may list the nodes of a cluster, comma-separated. aio-pika's robust
connection reconnects, restores channels, queues, bindings and consumers, but always to the
one URL it was given; :class:`ClusterConnection` keeps all of that and only moves each new
connection attempt on to the next address, so a dead or paused node is left for a live one.
Behind a Kubernetes Service that load-balances the nodes one URL is enough: each reconnect
already lands on a live node.
"""

from __future__ import annotations

from typing import Any

from aio_pika import RobustConnection
from aio_pika.exceptions import AMQPConnectionError
from yarl import URL


def split_urls(urls: str) -> list[str]:
    """The addresses of ``LOOKOUT_AMQP_URL``: one URL, or several separated by commas."""
    found = [url.strip() for url in urls.split(",") if url.strip()]
    if not found:
        raise ValueError("LOOKOUT_AMQP_URL names no RabbitMQ address")
    return found


class ClusterConnection(RobustConnection):
    """aio-pika's robust connection, but each (re)connection attempt tries the next node.

    The hook is the one moment every attempt shares: the robust connection clears its
    transport right before it connects again (and when it closes). Moving the address on
    there means a lost node is never retried before the others.
    """

    def __init__(self, urls: list[str], first: int = 0, **kwargs: Any) -> None:
        self._urls = [URL(url) for url in urls]
        self._at = (first - 1) % len(self._urls)  # the first attempt goes to ``first``
        self._ready = False
        super().__init__(self._urls[first % len(self._urls)], **kwargs)
        self._ready = True

    @property
    def transport(self) -> Any:
        return self.__dict__.get("_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        self.__dict__["_transport"] = value
        if value is None and self.__dict__.get("_ready"):
            self._at = (self._at + 1) % len(self._urls)
            self.url = self._urls[self._at]


async def connect_first(
    urls: list[str], name: str, *, reconnect_interval: float, attempt_timeout: float
) -> ClusterConnection:
    """The first connection, to the first node that answers (any one will do); later
    reconnections move on from there by themselves. ``name`` labels the connection in
    RabbitMQ's management UI."""
    failure: BaseException | None = None
    for first in range(len(urls)):
        connection = ClusterConnection(
            urls,
            first,
            client_properties={"connection_name": name},
            reconnect_interval=reconnect_interval,
        )
        try:
            await connection.connect(timeout=attempt_timeout)
            return connection
        # OSError covers TimeoutError: a paused node accepts TCP but never answers.
        except (OSError, AMQPConnectionError) as exc:
            failure = exc
        await connection.close()
    assert failure is not None
    raise failure
