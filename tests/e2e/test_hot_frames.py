"""A hot stream end to end, every service an OS process: an operator marks a stream hot
through the api, the worker process holds it (its reader child decoding a local 720p test
video), and ``latest.jpg`` answers its live frame at the size asked, with a bearer token
and through a signed URL without one."""

from __future__ import annotations

import io
import subprocess
from typing import Any

import httpx
import pytest
from PIL import Image

from .conftest import System
from .test_first_flow import operator_token, wait_for

pytestmark = pytest.mark.e2e


def make_hot_video(system: System) -> str:
    """1280x720 H.264 with a keyframe every second; the reader plays it in a loop."""
    path = system.media / "hot-camera.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=10", "-t", "3", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path.as_uri()


def size_of(response: httpx.Response) -> tuple[int, int]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return Image.open(io.BytesIO(response.content)).size


async def test_a_hot_stream_serves_its_live_frame_at_the_size_asked(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.url("api"), timeout=10) as client:
        _, token = await operator_token(system, client)
        headers = {"Authorization": f"Bearer {token}"}
        r = await client.post(
            "/api/v1/streams",
            json={"name": "Hot camera", "url": make_hot_video(system)},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        stream_id = r.json()["id"]
        r = await client.patch(f"/api/v1/streams/{stream_id}", json={"hot": True}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["hot"] is True
        latest = f"/api/v1/streams/{stream_id}/latest.jpg"

        async def hot_frame() -> httpx.Response | None:
            r = await client.get(latest, params={"width": 320}, headers=headers)
            return r if r.status_code == 200 and r.headers["x-frame-source"] == "hot" else None

        # The worker takes the stream at its next tick; its reader's first keyframe follows.
        small = await wait_for(hot_frame, 20, "the worker's first hot frame")
        assert size_of(small) == (320, 180)
        large = await client.get(latest, params={"width": 960, "height": 960}, headers=headers)
        assert size_of(large) == (960, 540)  # fits the box, aspect ratio kept
        assert large.headers["x-frame-source"] == "hot"
        assert float(large.headers["x-frame-age"]) < 2

        r = await client.post(
            f"/api/v1/streams/{stream_id}/image-urls", json={"ttl_seconds": 60}, headers=headers
        )
        assert r.status_code == 200, r.text
        signed: Any = r.json()["latest_jpg"]
        viewer = await client.get(f"{signed}&width=480")  # no Authorization header
        assert size_of(viewer) == (480, 270)
        assert viewer.headers["x-frame-source"] == "hot"
        unsigned = await client.get(latest, params={"width": 480})
        assert unsigned.status_code == 401
