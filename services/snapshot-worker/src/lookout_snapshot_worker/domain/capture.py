"""Rules of a cold capture by a capture child, without I/O: the frame size it scales to and
the answer record it writes to its worker (adapters/capture_child.py, adapters/capture_pool.py)."""

from __future__ import annotations

import struct

# An answer on the child's stdout: whether it holds a JPEG (else a failure's text: libav's
# log lines of the run and the error, never the URL), and the payload's length; then the payload.
ANSWER_HEADER = struct.Struct("!?I")
# What the decoders print when a frame is over max_pixels (libavutil's av_image_check_size2),
# in ffprobe's stderr as in a capture child's failure text.
PIXEL_CAP_HIT = "exceeds specified max pixel count"


def pack_answer(ok: bool, payload: bytes) -> bytes:
    return ANSWER_HEADER.pack(ok, len(payload)) + payload


def scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """What ffmpeg's ``scale=w='min(iw,MAX)':h=-2`` makes of a ``width`` x ``height`` frame:
    never wider than ``max_width`` nor scaled up, the aspect ratio kept with an even height
    (libavfilter rounds ``w * ih / iw`` to the nearest multiple of 2, halves up)."""
    w = min(width, max_width)
    h = (w * height + width) // (2 * width) * 2
    return w, max(h, 2)
