"""The reader child of one hot stream: ``python -m lookout_snapshot_worker.adapters.hot_reader``.

It opens the source with PyAV (FFmpeg's libraries in-process, so no ffmpeg process per
frame), decodes keyframes only (``skip_frame = NONKEY``) or every frame, encodes at most
one frame per ``publish_interval`` to JPEG, and writes it to stdout as a record
(domain/hot.py ``FRAME_HEADER``).
Its worker starts it with the egress shim preloaded and the policy in its environment
(adapters/egress.py): the shim judges every connection PyAV's libraries open, as it does for
ffmpeg. Its settings come as one JSON line on stdin, so the URL (which may carry
credentials) never shows in the process list. On any failure it prints why on stderr and
exits non-zero; its worker decides about reconnecting. A local file plays in real time and
starts over at its end, like a camera that never stops.

Cost (1280x720 H.264, a keyframe every 1.2 s): ~7-10 ms of CPU a second, ~30 MiB of
private memory: ~12 MiB are the interpreter and PyAV's libraries once loaded, the rest the
decoder's and encoder's buffers. Everything runs on the one thread (see Encoder).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, BinaryIO

import av
import av.error
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from lookout_snapshot_worker.adapters.commands import open_options
from lookout_snapshot_worker.domain.hot import pack_frame

TIME_BASE = Fraction(1, 25)  # the JPEG encoder's: any will do, each frame stands alone


class Encoder:
    """An mjpeg encoder, made again when the frame size changes.

    Both it and the pixel-format conversion run on this thread only. Left to PyAV's default
    (as many threads as cores) the encoder starts slice threads with a copy of its context
    each, ~12 MiB more per reader, and the conversion a thread pool of its own; a reader
    encodes about one frame a second, and a worker runs a hundred readers side by side.
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._size = (0, 0)
        self._reformatter = VideoReformatter()
        self._encoded = 0

    def jpeg(self, frame: VideoFrame, size: tuple[int, int] | None = None) -> bytes:
        """``frame`` as a JPEG, scaled to ``size`` (None: as it is) with bicubic
        interpolation, the default of ffmpeg's scale filter."""
        size = size or (frame.width, frame.height)
        if self._context is None or size != self._size:
            context: Any = av.CodecContext.create("mjpeg", "w")
            context.width, context.height = size
            context.pix_fmt = "yuvj420p"
            context.time_base = TIME_BASE
            context.thread_count = 1
            context.options = {"qmin": "3", "qmax": "3"}  # what -q:v 3 asks of cold captures
            self._context, self._size = context, size
        full_range = self._reformatter.reformat(
            frame, *size, format="yuvj420p", interpolation="BICUBIC", threads=1
        )
        # Each JPEG stands alone, so the encoder gets a count of its own as the timestamp:
        # it refuses one that goes back (a file starting over, a camera resetting its
        # clock) with EINVAL.
        full_range.pts, full_range.time_base = self._encoded, TIME_BASE
        self._encoded += 1
        return b"".join(bytes(p) for p in self._context.encode(full_range))


class Pacer:
    """At most one frame per ``interval`` seconds. A tenth of it is slack, so a source
    whose keyframes come exactly one interval apart, with jitter, keeps every one."""

    SLACK = 0.1

    def __init__(self, interval: float) -> None:
        self._interval = interval * (1 - self.SLACK)
        self._last: float | None = None

    def __call__(self, now: float) -> bool:
        if self._last is not None and now - self._last < self._interval:
            return False
        self._last = now
        return True


def frames(config: dict[str, Any]) -> Iterator[VideoFrame]:
    kind: str = config["kind"]
    io_timeout = float(config["io_timeout"])
    with av.open(
        config["url"],
        options=open_options(kind, io_timeout),
        timeout=(io_timeout, float(config["stall_seconds"])),
    ) as container:
        if not container.streams.video:
            raise SystemExit("no video stream found")
        stream = container.streams.video[0]
        context: Any = stream.codec_context
        context.thread_count = 1  # many streams side by side: one thread each
        if config["mode"] == "keyframes":
            context.skip_frame = "NONKEY"
        started, first_pts = time.monotonic(), None
        for frame in container.decode(stream):
            if frame.width * frame.height > int(config["max_pixels"]):
                raise SystemExit(
                    f"the source's frames are larger than {config['max_pixels']} pixels"
                )
            if kind == "file" and frame.time is not None:
                # Real time for a file, as a camera would send it.
                first_pts = frame.time if first_pts is None else first_pts
                delay = started + (frame.time - first_pts) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield frame


def run(config: dict[str, Any], out: BinaryIO) -> None:
    encoder = Encoder()
    due = Pacer(float(config.get("publish_interval", 0)))
    while True:
        for frame in frames(config):
            if not due(time.monotonic()):
                continue  # decoded (the next frames may need it), never encoded
            jpeg = encoder.jpeg(frame)
            out.write(pack_frame(time.time(), frame.width, frame.height, jpeg))
            out.flush()
        if config["kind"] != "file":
            raise SystemExit("the source ended the stream")


def main() -> None:
    config = json.loads(sys.stdin.readline())
    try:
        run(config, sys.stdout.buffer)
    except av.error.FFmpegError as exc:
        # FFmpeg's own words ("Connection refused", "Server returned 404 Not Found"), which
        # domain/failures.py classifies as it does ffmpeg's stderr. Never the URL.
        sys.exit(f"{exc.strerror or exc}")
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)


if __name__ == "__main__":
    main()
