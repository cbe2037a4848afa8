"""A stream's changes and what they imply (domain/streams.py)."""

from __future__ import annotations

import pytest
from lookout_api.domain import streams
from lookout_api.domain.errors import InvalidInput

CURRENT = {
    "hot": False,
    "hot_mode": "keyframes",
    "name": "gate",
    "url": "rtsp://cam/a",
    "kind": "rtsp",
    "tags": ["a"],
    "enabled": True,
    "status": "online",
    "last_error": None,
    "last_error_category": None,
    "width": 640,
    "height": 480,
    "codec": "h264",
}


def test_stream_changes() -> None:
    rename = streams.apply_changes(CURRENT, {"name": "gate 2"}, None)
    assert rename.changed == ("name",) and not rename.probe and rename.values["width"] == 640
    same = streams.apply_changes(CURRENT, {"name": "gate", "tags": ["A"]}, None)
    assert same.changed == ()
    moved = streams.apply_changes(CURRENT, {"url": "https://cam/x.m3u8"}, None)
    assert moved.probe and moved.values["kind"] == "hls" and moved.values["status"] == "pending"
    assert moved.values["width"] is None
    off = streams.apply_changes(CURRENT, {"enabled": False, "url": "rtsp://cam/b"}, None)
    assert off.values["status"] == "disabled" and not off.probe
    back = streams.apply_changes(
        {**CURRENT, "enabled": False, "status": "disabled"}, {"enabled": True}, None
    )
    assert back.probe and back.values["status"] == "pending"
    heated = streams.apply_changes(CURRENT, {"hot": True, "hot_mode": "all"}, None)
    assert heated.heats and heated.changed == ("hot", "hot_mode") and not heated.probe
    hot = {**CURRENT, "hot": True}
    assert not streams.apply_changes(hot, {"hot_mode": "all"}, None).heats  # already counted
    bad_mode = {"hot_mode": "sometimes"}
    for bad in (
        {"url": "-i x"},
        {"url": "rtsp://cam/a b"},
        {"name": "  "},
        {"tags": ["a b"]},
        bad_mode,
    ):
        with pytest.raises(InvalidInput):
            streams.apply_changes(CURRENT, bad, None)
