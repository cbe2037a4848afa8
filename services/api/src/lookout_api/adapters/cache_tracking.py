"""Server-assisted invalidation of the read cache's in-process copies (local_copies.py).

One connection per api process asks Redis for client-side caching invalidations in
broadcast mode (``CLIENT TRACKING on REDIRECT <itself> BCAST PREFIX ...``) and subscribes
to ``__redis__:invalidate``: Redis then sends the name of every key under those prefixes as
soon as anyone changes it, whoever the writer:

- ``cache:gen:<tenant>`` / ``cache:gen:platform`` (every api write's generation bump): that
  scope's copies go;
- ``cache:epoch`` (a lost bump made up): every copy goes;
- ``counts:tenant:<tenant>`` / ``counts:platform`` (the aggregator's counts, which move
  without a generation bump): that scope's list pages (their totals watch them), counts
  answers and dashboard summaries go;
- ``counts:epoch`` (counts lost or rebuilt): every one of those goes;
- ``hot:frame:<stream>`` (a worker published the stream's frame, or it expired): that
  stream's frame identity goes (frame_identities.py).

So another process serves a stale copy for as long as one invalidation takes to arrive
(measured in tests/integration/api/test_api_cache_replicas.py). The copies are served only
while this connection is known to be alive: it is pinged every ``heartbeat`` seconds, and
a ping not answered within ``timeout`` (or any error) turns the layer off and drops every
copy, until the connection is made again and the layer restarts empty. The bound on a
stale copy when Redis stalls or goes away is thus ``heartbeat + timeout``.

The connection is a plain socket read with hiredis (redis-py's own pubsub routes the
``__redis__:invalidate`` messages of a self-redirected connection to its internal push
handlers, where they never reach the caller); hiredis is the RESP parser redis-py uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from typing import Any

import hiredis
from lookout_shared.count_keys import platform_key, tenant_key
from lookout_shared.counts_epoch import epoch_key
from lookout_shared.hot_frames import FRAME_KEYS
from lookout_shared.redis import Keys

from lookout_api.adapters.frame_identities import FrameIdentities
from lookout_api.adapters.local_copies import LocalCopies

log = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0
# The kinds of copies holding the aggregator's counts: a list page (its total), a counts
# answer, a dashboard summary.
COUNTED_KINDS = ("list", "counts", "dashboard")


class CacheTracking:
    def __init__(
        self,
        connection: dict[str, Any],
        tls: bool,
        prefix: str,
        copies: LocalCopies,
        frames: FrameIdentities | None = None,
        *,
        heartbeat: float = 0.5,
        timeout: float = 0.5,
    ) -> None:
        self.connection = connection  # redis-py's connection kwargs: host, port, password...
        self.tls = tls
        self.prefix = prefix
        self.copies = copies
        self.frames = frames
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.connected = asyncio.Event()
        keys = Keys(prefix)
        self._tenant_counts = tenant_key(keys, "")  # a tenant's counts: this and its id
        self._platform_counts = platform_key(keys)
        self._counts_epoch = epoch_key(keys)

    def prefixes(self) -> list[str]:
        p = self.prefix
        counts = [self._tenant_counts, self._platform_counts, self._counts_epoch]
        frames = [p + FRAME_KEYS] if self.frames is not None else []
        return [p + "cache:gen:", p + "cache:epoch", *counts, *frames]

    async def run(self) -> None:
        """Keep the channel up for the life of the process."""
        if not self.copies.enabled and self.frames is None:
            return
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await self._session()
            except (OSError, TimeoutError, hiredis.ProtocolError, _Refused) as exc:
                if self.connected.is_set() or delay == RETRY_FIRST_SECONDS:
                    log.warning("read cache: invalidation channel down, local copies off: %r", exc)
            finally:
                self.copies.pause()
                if self.frames is not None:
                    self.frames.pause()
                if self.connected.is_set():
                    delay = RETRY_FIRST_SECONDS  # it was up: try again soon
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _session(self) -> None:
        c = self.connection
        tls = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(c.get("host", "127.0.0.1"), c.get("port", 6379), ssl=tls),
            self.timeout,
        )
        parser = hiredis.Reader()
        pending: list[Any] = []

        async def call(*args: str | int) -> Any:
            writer.write(_command(*args))
            async with asyncio.timeout(self.timeout):
                while not pending:
                    await _feed(reader, parser, pending)
            reply = pending.pop(0)
            if isinstance(reply, hiredis.ReplyError):
                raise _Refused(str(reply))
            return reply

        try:
            if c.get("password"):
                await call("AUTH", *([c["username"]] if c.get("username") else []), c["password"])
            client_id = await call("CLIENT", "ID")
            args: list[str | int] = ["CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST"]
            for prefix in self.prefixes():
                args += ["PREFIX", prefix]
            await call(*args)
            await call("SUBSCRIBE", CHANNEL.decode())
            self.copies.resume()
            if self.frames is not None:
                self.frames.resume()
            self.connected.set()
            log.info("read cache: invalidation channel up, local copies on")
            await self._listen(reader, writer, parser, pending)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _listen(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: hiredis.Reader,
        pending: list[Any],
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Wait for messages until the next heartbeat is due, then ping and require the
            # pong (or any message) within the timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat):
                    while True:
                        await _feed(reader, parser, pending)
                        self._handle(pending)
            writer.write(_command("PING"))
            answered_by = loop.time() + self.timeout
            async with asyncio.timeout_at(answered_by):
                while True:
                    await _feed(reader, parser, pending)
                    if self._handle(pending):
                        break

    def _handle(self, pending: list[Any]) -> bool:
        """Apply the invalidations read; True if a pong was among the replies."""
        pong = False
        for message in pending:
            if isinstance(message, list) and message and message[0] == b"message":
                if message[1] == CHANNEL:
                    self._invalidate(message[2])
            elif isinstance(message, list) and message and message[0] == b"pong":
                pong = True
        pending.clear()
        return pong

    def _invalidate(self, keys: list[bytes] | None) -> None:
        if keys is None:  # FLUSHALL / FLUSHDB
            self.copies.drop_all()
            if self.frames is not None:
                self.frames.drop_all()
            return
        p = self.prefix
        for raw in keys:
            key = raw.decode("utf-8", "replace")
            try:
                if key.startswith(p + FRAME_KEYS):
                    if self.frames is not None:
                        self.frames.drop(uuid.UUID(key[len(p + FRAME_KEYS) :]))
                elif key.startswith(f"{p}cache:gen:"):
                    self.copies.drop_scopes([_scope(key[len(f"{p}cache:gen:") :])])
                elif key.startswith(self._tenant_counts):
                    scope = _scope(key.removeprefix(self._tenant_counts))
                    self.copies.drop_scopes([scope], COUNTED_KINDS)
                elif key == self._platform_counts:
                    self.copies.drop_scopes([None], COUNTED_KINDS)
                elif key.startswith(self._counts_epoch):
                    self.copies.drop_all(COUNTED_KINDS)
                else:  # the cache epoch
                    self.copies.drop_all()
            except ValueError:  # a key we cannot place: drop everything
                self.copies.drop_all()
                if self.frames is not None:
                    self.frames.drop_all()


class _Refused(Exception):
    """Redis answered an error (e.g. AUTH, or CLIENT TRACKING unsupported)."""


def _scope(text: str) -> uuid.UUID | None:
    return None if text == "platform" else uuid.UUID(text)


async def _feed(reader: asyncio.StreamReader, parser: hiredis.Reader, out: list[Any]) -> None:
    data = await reader.read(65536)
    if not data:
        raise ConnectionResetError("Redis closed the invalidation channel")
    parser.feed(data)
    while (reply := parser.gets()) is not False:
        out.append(reply)


def _command(*args: str | int) -> bytes:
    parts = [str(a).encode() if not isinstance(a, bytes) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
