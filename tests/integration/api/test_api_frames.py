"""GET /api/v1/streams/{id}/latest.jpg against the real api, Postgres and Redis: a hot frame
the test publishes as a worker would (lookout_shared.hot_frames), the stored snapshot when
there is none, sizes, validators, the offline flag, one encode for concurrent requests."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import asyncpg
import pytest
from lookout_shared.hot_frames import HotFrame, frame_key, to_fields
from PIL import Image

from .conftest import Api, add_snapshot


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


async def publish(
    api: Api, stream_id: str, data: bytes, size: tuple[int, int], age: float = 0
) -> HotFrame:
    """Write a hot frame the way the worker holding the stream does, then wait until Redis
    has told the api (its kept frame identity for the stream no longer names an older
    frame), as any reader in another process sees it."""
    deps = api.app.state.deps
    frame = HotFrame(data, time.time() - age, size[0], size[1], "worker-test")
    key = frame_key(deps.keys, uuid.UUID(stream_id))
    await deps.redis.hset(key, mapping=to_fields(frame))
    await deps.redis.pexpire(key, 60_000)
    await identity_dropped(api, stream_id, frame.captured_at)
    return frame


async def identity_dropped(api: Api, stream_id: str, newest: float | None = None) -> None:
    """Wait (1 s at most) until the api keeps no identity of the stream's frame but
    ``newest``."""
    identities = api.app.state.deps.frame_identities
    deadline = time.monotonic() + 1.0
    while identities.get(uuid.UUID(stream_id)) not in (None, newest):
        assert time.monotonic() < deadline, "the frame key's invalidation never arrived"
        await asyncio.sleep(0.001)


def size_of(body: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG"
        return image.size


async def test_hot_frame_is_resized_to_each_size_asked_with_validators(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    frame = await publish(api, stream["id"], jpeg(1280, 720), (1280, 720))
    url = f"/api/v1/streams/{stream['id']}/latest.jpg"

    small = await api.client.get(url, params={"width": 320}, headers=op)
    assert small.status_code == 200, small.text
    assert small.headers["content-type"] == "image/jpeg"
    assert size_of(small.content) == (320, 180)
    assert small.headers["x-frame-source"] == "hot"
    assert 0 <= float(small.headers["x-frame-age"]) < 5
    assert "x-frame-offline" not in small.headers
    assert small.headers["cache-control"] == "private, no-cache"
    assert small.headers["last-modified"]

    boxed = await api.client.get(url, params={"width": 640, "height": 200}, headers=op)
    assert size_of(boxed.content) == (356, 200)  # fits the box, aspect ratio kept
    assert boxed.headers["etag"] != small.headers["etag"]
    # Never enlarged past the source; the default is the source's size.
    assert size_of((await api.client.get(url, params={"height": 1080}, headers=op)).content) == (
        1280,
        720,
    )
    assert size_of((await api.client.get(url, headers=op)).content) == (1280, 720)

    again = await api.client.get(
        url, params={"width": 320}, headers={**op, "If-None-Match": small.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == small.headers["etag"]

    # A new frame is a new image and a new tag.
    await publish(api, stream["id"], jpeg(1280, 720, (0, 0, 255)), (1280, 720))
    newer = await api.client.get(
        url, params={"width": 320}, headers={**op, "If-None-Match": small.headers["etag"]}
    )
    assert newer.status_code == 200 and newer.headers["etag"] != small.headers["etag"]
    assert frame.captured_at > 0


@pytest.mark.parametrize(
    "query",
    [
        {"width": 8},
        {"width": 5000},
        {"height": 15},
        {"quality": 10},
        {"quality": 99},
        {"width": "wide"},
    ],
)
async def test_bad_sizes_and_qualities_are_problems(api: Api, query: dict[str, str | int]) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(64, 48), (64, 48))
    r = await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg", params=query, headers=op)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_concurrent_requests_for_one_size_make_one_encode(api: Api) -> None:
    _, operator = await api.tenant_user("operator")
    stream = await api.stream(operator)
    await publish(api, stream["id"], jpeg(1920, 1080), (1920, 1080))
    _, viewer = await api.tenant_user("viewer", stream["tenant_id"])
    encoder = api.app.state.deps.frames
    before = encoder.encodes
    url = f"/api/v1/streams/{stream['id']}/latest.jpg"
    answers = await asyncio.gather(
        *(api.client.get(url, params={"width": 480}, headers=viewer) for _ in range(20))
    )
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert encoder.encodes - before == 1
    # Another quality is another image.
    await api.client.get(url, params={"width": 480, "quality": 50}, headers=viewer)
    assert encoder.encodes - before == 2


async def test_without_hot_frame_the_latest_snapshot_answers_and_without_any_404(
    api: Api, db: asyncpg.Pool
) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    url = f"/api/v1/streams/{stream['id']}/latest.jpg"
    r = await api.client.get(url, headers=op)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "no frame" in r.json()["detail"]

    await add_snapshot(api, db, stream["id"], jpeg(800, 600), age_seconds=60)
    r = await api.client.get(url, params={"width": 200}, headers=op)
    assert r.status_code == 200, r.text
    assert size_of(r.content) == (200, 150)
    assert r.headers["x-frame-source"] == "snapshot"
    assert r.headers["x-frame-offline"] == "true"  # a minute old
    assert float(r.headers["x-frame-age"]) >= 59


@pytest.mark.api_settings(frame_offline_seconds=5)
async def test_a_frame_older_than_the_limit_is_flagged_offline(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stale, fresh = await api.stream(op, "stale"), await api.stream(op, "fresh")
    await publish(api, stale["id"], jpeg(64, 48), (64, 48), age=30)
    await publish(api, fresh["id"], jpeg(64, 48), (64, 48))
    old = await api.client.get(f"/api/v1/streams/{stale['id']}/latest.jpg", headers=op)
    assert old.status_code == 200 and old.headers["x-frame-offline"] == "true"
    assert float(old.headers["x-frame-age"]) >= 30
    new = await api.client.get(f"/api/v1/streams/{fresh['id']}/latest.jpg", headers=op)
    assert new.status_code == 200 and "x-frame-offline" not in new.headers


async def test_another_tenants_stream_frame_is_404(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    _, other = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(64, 48), (64, 48))
    r = await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg", headers=other)
    assert r.status_code == 404
    r = await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg")
    assert r.status_code == 401


async def test_an_undecodable_hot_frame_is_a_problem_not_a_crash(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], b"not a jpeg at all", (64, 48))
    r = await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg", headers=op)
    assert r.status_code == 404 and "decoded" in r.json()["detail"]
