"""Reading a JPEG's size from its header."""

from __future__ import annotations

from lookout_snapshot_worker.domain.jpeg import jpeg_dimensions


def test_jpeg_dimensions() -> None:
    # SOI, APP0 (16 bytes), SOF0 with height 360 and width 640.
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x11\x08\x01\x68\x02\x80\x03"
        + b"\x00" * 9
    )
    assert jpeg_dimensions(jpeg) == (640, 360)
    assert jpeg_dimensions(b"\x89PNG....") is None
    assert jpeg_dimensions(b"\xff\xd8\xff\xda\x00\x02") is None
    assert jpeg_dimensions(b"\xff\xd8") is None
