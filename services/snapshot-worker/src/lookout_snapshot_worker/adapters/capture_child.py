"""A warm capture child: ``python -m lookout_snapshot_worker.adapters.capture_child``.

It takes cold captures one after another, for as long as its worker keeps it: each request
is one JSON line on stdin (URL, kind, io timeout, max width, max pixels: the URL, which may
carry credentials, never shows in the process list), each answer one record on stdout
(domain/capture.py): the JPEG, or the failure's text. The capture is the work of the ffmpeg
command it replaces (adapters/commands.py ``capture_command``), done by the same FFmpeg
libraries in-process through PyAV: the same input restrictions (commands.py
``open_options``), one decoding thread, keyframes only, frames over ``max_pixels`` refused by
the decoder before they are allocated, the first frame scaled to ``max_width`` and encoded
as a JPEG at quality 3. What is saved is ffmpeg's start (exec, linking FFmpeg's libraries,
init): ~90 ms of CPU per capture, against ~14 ms here for a 720p H.264 keyframe.

A failure's text is libav's log lines of the run (level error, as ``-loglevel error``
prints them) and the error's own words without the filename PyAV adds to it, so the worker
classifies it as it did ffmpeg's stderr (domain/failures.py). Its worker starts it with the
egress shim preloaded (adapters/egress.py), which judges every connection, sets its memory
cap and kills it with its worker (adapters/child.py); a refused connection ends the process
with the shim's message on stderr, which the worker reads then.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import av
import av.error
import av.logging

from lookout_snapshot_worker.adapters.commands import open_options
from lookout_snapshot_worker.adapters.hot_reader import Encoder
from lookout_snapshot_worker.domain.capture import PIXEL_CAP_HIT, pack_answer, scaled_size


class Failed(Exception):
    """The capture failed; the message is the error's text, without the URL."""


def capture(request: dict[str, Any], encoder: Encoder, logs: list[tuple[int, str, str]]) -> bytes:
    """One JPEG of the first keyframe of ``request['url']``; b"" when no frame was decoded."""
    max_pixels = str(int(request["max_pixels"]))
    # The decoders' options reach the decoders avformat_find_stream_info opens too, as
    # ffmpeg's do: it may decode a frame to learn the stream's size.
    options = {
        **open_options(request["kind"], float(request["io_timeout"])),
        "skip_frame": "nokey",
        "max_pixels": max_pixels,
        "threads": "1",
    }
    with av.open(request["url"], options=options) as container:
        if not container.streams.video:
            raise Failed("no video stream found")
        stream = container.streams.video[0]
        context: Any = stream.codec_context
        context.thread_count = 1  # the worker runs captures side by side: one thread each
        context.skip_frame = "NONKEY"  # why: see capture_command in commands.py
        context.options = {"max_pixels": max_pixels}
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                # ffmpeg goes on to the next packet after a damaged one; a frame over the
                # cap fails every one, so that ends the run at once.
                if any(PIXEL_CAP_HIT in message for _, _, message in logs):
                    raise
                continue
            for frame in decoded:
                if frame.width * frame.height > int(max_pixels):  # a decoder without the check
                    raise Failed(f"Picture size {frame.width}x{frame.height} {PIXEL_CAP_HIT}")
                size = scaled_size(frame.width, frame.height, int(request["max_width"]))
                return encoder.jpeg(frame, size)
    return b""


def answer(request: dict[str, Any], encoder: Encoder) -> bytes:
    with av.logging.Capture(local=False) as logs:
        try:
            return pack_answer(True, capture(request, encoder, logs))
        except av.error.FFmpegError as exc:
            # strerror: FFmpeg's words ("Connection refused"); str(exc) would add the
            # filename, which stands here as "<input>", as the worker writes it in ffmpeg's.
            error = f"<input>: {exc.strerror or type(exc).__name__}"
        except Failed as exc:
            error = str(exc)
    lines = [
        f"[{name}] {message.strip()}" if name else message.strip() for _, name, message in logs
    ]
    text = "\n".join([*lines, error])
    return pack_answer(False, text.encode(errors="replace"))


def serve(requests: BinaryIO, out: BinaryIO) -> None:
    encoder = Encoder()
    out.write(pack_answer(True, b""))  # ready: FFmpeg's libraries are loaded
    out.flush()
    for line in requests:
        try:
            reply = answer(json.loads(line), encoder)
        except MemoryError:
            # Past the memory cap inside Python itself: the failed allocation is all that
            # went wrong. Ending here would race the worker handing this child the next
            # capture, which would then fail for nothing.
            reply = pack_answer(False, b"Cannot allocate memory")
        out.write(reply)
        out.flush()


def main() -> None:
    av.logging.set_level(av.logging.ERROR)
    # Every line goes to the capture it belongs to: PyAV would hold back a repeated line
    # and report it with the next different one, in the next capture.
    av.logging.set_skip_repeated(False)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)


if __name__ == "__main__":
    main()
