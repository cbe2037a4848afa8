"""Waiting briefly for the event that tells who owns a stream or job.

A client told about a new stream by the REST answer may subscribe before its
``stream.created`` has reached the notifier. Every instance sees every event, so a
subscription can wait for this instance to record one that names the id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class OwnerWatch:
    def __init__(self) -> None:
        self._waiting: dict[uuid.UUID, set[asyncio.Future[None]]] = {}

    @contextmanager
    def watching(self, entity_id: uuid.UUID) -> Iterator[asyncio.Future[None]]:
        """A future done once an event naming ``entity_id`` has been recorded. Start watching
        before reading the owner, so an event recorded in between is not missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(entity_id, set()).add(future)
        try:
            yield future
        finally:
            waiters = self._waiting.get(entity_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiting[entity_id]

    def learned(self, entity_ids: Iterable[uuid.UUID]) -> None:
        for entity_id in entity_ids:
            for future in self._waiting.pop(entity_id, ()):
                if not future.done():
                    future.set_result(None)
