"""Resized JPEGs of the latest frames: each (frame, request) encoded once, kept until the
next frame, and encoded off the event loop.

Pillow (a well-kept library; its JPEG decoder and resampler release the GIL) does the work
in a small thread pool. ``draft()`` asks libjpeg to decode at 1/2, 1/4 or 1/8 scale when
the output is that much smaller, which skips most of the decode of a big frame: the one
large win for thumbnails. Concurrent requests for the same key share one encode; finished
images wait in an LRU bounded in bytes (a key names the frame's capture time, so a new
frame is a new key and the old entries simply age out).
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from lookout_api.domain.frames import Encoded, FrameRequest, fit
from lookout_api.metrics import FRAME_CACHE_HITS as CACHE_HITS
from lookout_api.metrics import FRAME_ENCODES as ENCODES
from lookout_api.ports import UndecodableFrame

# What Pillow raises for bytes that are no (acceptable) image, and what reading them raises.
UNDECODABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def encode(source: bytes, asked: FrameRequest, max_width: int) -> Encoded:
    """The frame resized to what was asked, as a JPEG (runs in a worker thread)."""
    with Image.open(io.BytesIO(source)) as image:
        size = fit(image.size, asked, max_width)
        image.draft("RGB", size)  # JPEG only: decode at the smallest scale still >= size
        frame = image.convert("RGB")
    if frame.size != size:
        frame = frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=asked.quality, optimize=False)
    return Encoded(out.getvalue(), *size)


class FrameEncoder:
    """Encoded images in an LRU bounded in bytes, and one pending encode per key. The LRU
    is an OrderedDict rather than cachetools.LRUCache: ``peek`` answers every latest.jpg
    hit (entrypoints/latest_jpgs.py), where a cachetools lookup costs several times a dict
    lookup and a move to the end."""

    def __init__(self, max_bytes: int, threads: int, max_width: int) -> None:
        self.max_bytes = max_bytes
        self.max_width = max_width
        self.encodes = 0  # encodes this process made (tests count them)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="frame-encode")
        self._lru: OrderedDict[Hashable, Encoded] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, asyncio.Task[Encoded]] = {}

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[bytes]], asked: FrameRequest
    ) -> Encoded:
        """The encoded image of ``key``; ``load`` gives the source frame (called on a miss
        only, by the first of concurrent callers)."""
        found = self._lru.get(key)
        if found is not None:
            self._lru.move_to_end(key)
            CACHE_HITS.inc()
            return found
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._make(key, load, asked))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        try:
            # shield: a client going away must not cancel the encode others wait for.
            return await asyncio.shield(task)
        except UNDECODABLE as exc:
            raise UndecodableFrame(repr(exc)) from exc

    def peek(self, key: Hashable) -> Encoded | None:
        """The encoded image of ``key`` if it is kept (no encode, no wait)."""
        found = self._lru.get(key)
        if found is not None:
            self._lru.move_to_end(key)
            CACHE_HITS.inc()
        return found

    async def _make(
        self, key: Hashable, load: Callable[[], Awaitable[bytes]], asked: FrameRequest
    ) -> Encoded:
        source = await load()
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(self._pool, encode, source, asked, self.max_width)
        self.encodes += 1
        ENCODES.inc()
        self._keep(key, encoded)
        return encoded

    def _keep(self, key: Hashable, encoded: Encoded) -> None:
        size = len(encoded.jpeg)
        if size > self.max_bytes or key in self._lru:
            return
        self._lru[key] = encoded
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._lru.popitem(last=False)
            self._bytes -= len(dropped.jpeg)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
