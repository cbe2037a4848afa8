"""The latest frame of a stream as an image: the size a request asks for, its validators
and its age. Pure rules: no I/O.

A request names a width, a height, both (the frame fits inside that box) or neither (the
source's size); the aspect ratio always stays, and a frame is never enlarged past its source.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Literal

from lookout_api.domain.errors import InvalidInput

MIN_SIDE = 16
MIN_QUALITY = 30
MAX_QUALITY = 95
DEFAULT_QUALITY = 80
Source = Literal["hot", "snapshot"]


@dataclass(frozen=True)
class FrameRequest:
    """What a client asked for: a box (either side may be open) and a JPEG quality."""

    width: int | None
    height: int | None
    quality: int

    @classmethod
    def checked(
        cls, width: int | None, height: int | None, quality: int | None, max_width: int
    ) -> FrameRequest:
        for name, value in (("width", width), ("height", height)):
            if value is not None and not MIN_SIDE <= value <= max_width:
                raise InvalidInput(f"{name}: from {MIN_SIDE} to {max_width} pixels")
        q = DEFAULT_QUALITY if quality is None else quality
        if not MIN_QUALITY <= q <= MAX_QUALITY:
            raise InvalidInput(f"quality: from {MIN_QUALITY} to {MAX_QUALITY}")
        return cls(width, height, q)


def fit(source: tuple[int, int], asked: FrameRequest, max_width: int) -> tuple[int, int]:
    """The output size: inside the box asked for and the source, at most ``max_width`` wide,
    with the source's aspect ratio (each side at least one pixel)."""
    src_w, src_h = source
    scales = [1.0, max_width / src_w]
    if asked.width is not None:
        scales.append(asked.width / src_w)
    if asked.height is not None:
        scales.append(asked.height / src_h)
    scale = min(scales)
    return max(1, round(src_w * scale)), max(1, round(src_h * scale))


def etag(stream_id: uuid.UUID, captured_at: float, asked: FrameRequest) -> str:
    """Changes with the frame and with what was asked; equal requests share it."""
    text = f"{stream_id}|{captured_at!r}|{asked.width}|{asked.height}|{asked.quality}"
    return f'"f{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def is_offline(age_seconds: float, offline_seconds: float) -> bool:
    """A frame this old says the source stopped sending (or its worker let it go)."""
    return age_seconds > offline_seconds


@dataclass(frozen=True)
class Encoded:
    """A frame resized and encoded as a request asked."""

    jpeg: bytes
    width: int
    height: int
