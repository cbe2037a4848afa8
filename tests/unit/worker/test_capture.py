"""A capture child's frame size and answer records (domain/capture.py), without any process."""

from __future__ import annotations

import pytest
from lookout_snapshot_worker.domain.capture import ANSWER_HEADER, pack_answer, scaled_size


@pytest.mark.parametrize(
    ("source", "max_width", "expected"),
    [
        ((1280, 720), 1920, (1280, 720)),  # never scaled up
        ((3840, 2160), 1920, (1920, 1080)),
        ((641, 481), 320, (320, 240)),  # 240.1 rounds to the nearest even height
        ((640, 363), 320, (320, 182)),  # 181.5 to the nearest even height
        ((320, 241), 1920, (320, 242)),  # an odd height is made even even when not scaled
    ],
)
def test_scaled_size_is_what_ffmpegs_scale_filter_makes(
    source: tuple[int, int], max_width: int, expected: tuple[int, int]
) -> None:
    assert scaled_size(*source, max_width) == expected


def test_an_answer_is_its_header_then_its_payload() -> None:
    record = pack_answer(False, b"Connection refused")
    assert ANSWER_HEADER.unpack(record[: ANSWER_HEADER.size]) == (False, 18)
    assert record[ANSWER_HEADER.size :] == b"Connection refused"
