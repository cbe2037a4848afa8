"""Width and height of a JPEG, read from its frame header (no image library needed)."""

from __future__ import annotations

# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def is_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8"


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF segment, or None if the data is not a JPEG."""
    if not is_jpeg(data):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF and i + 9 <= len(data):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        i += 2 + length
    return None
