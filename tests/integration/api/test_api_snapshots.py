"""Snapshot requests (coalescing, max_age), the snapshot list and the images (validators,
conditional requests, byte ranges) through the real app, Postgres and storage."""

from __future__ import annotations

import asyncio
import uuid
from email.utils import format_datetime
from typing import Any

import asyncpg

from .conftest import Api, add_snapshot

IMAGE = bytes(range(256)) * 4  # 1,024 bytes, every offset recognisable


async def _stream(api: Api) -> tuple[dict[str, str], Any]:
    _, op = await api.tenant_user("operator")
    return op, await api.stream(op)


async def test_ten_concurrent_requests_make_one_job(api: Api, db: asyncpg.Pool) -> None:
    op, s = await _stream(api)
    url = f"/api/v1/streams/{s['id']}/snapshots"
    responses = await asyncio.gather(*(api.client.post(url, headers=op) for _ in range(10)))
    assert [r.status_code for r in responses] == [202] * 10
    bodies = [r.json() for r in responses]
    assert len({b["job_id"] for b in bodies}) == 1
    assert sorted(b["joined"] for b in bodies) == [False] + [True] * 9
    assert await db.fetchval("SELECT count(*) FROM snapshot_jobs") == 1
    captures = "SELECT count(*) FROM outbox WHERE message_type = 'snapshot.capture'"
    assert await db.fetchval(captures) == 1


async def test_max_age_answers_a_fresh_snapshot_and_queues_nothing(
    api: Api, db: asyncpg.Pool
) -> None:
    op, s = await _stream(api)
    snap = await add_snapshot(api, db, s["id"], IMAGE, age_seconds=5)
    url = f"/api/v1/streams/{s['id']}/snapshots"

    r = await api.client.post(url, params={"max_age": 60}, headers=op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(snap["id"]) and body["sha256"] == snap["sha256"]
    assert body["image_url"] == f"{api.settings.public_url}/api/v1/snapshots/{snap['id']}/image"
    image = await api.client.get(
        body["image_url"].removeprefix(api.settings.public_url), headers=op
    )
    assert image.content == IMAGE
    jobs = "SELECT count(*) FROM snapshot_jobs WHERE status = 'queued'"
    assert await db.fetchval(jobs) == 0
    captures = "SELECT count(*) FROM outbox WHERE message_type = 'snapshot.capture'"
    assert await db.fetchval(captures) == 0
    # Too old for max_age=2, and no max_age at all: both queue (the second joins).
    r = await api.client.post(url, params={"max_age": 2}, headers=op)
    assert r.status_code == 202 and r.json()["joined"] is False
    r = await api.client.post(url, headers=op)
    assert r.status_code == 202 and r.json()["joined"] is True
    assert await db.fetchval(jobs) == 1
    assert await db.fetchval(captures) == 1


async def test_max_age_is_validated(api: Api, db: asyncpg.Pool) -> None:
    op, s = await _stream(api)
    for bad in ("-1", "abc", "86401", "1.5"):
        r = await api.client.post(
            f"/api/v1/streams/{s['id']}/snapshots", params={"max_age": bad}, headers=op
        )
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == ["query", "max_age"]
    assert await db.fetchval("SELECT count(*) FROM snapshot_jobs") == 0


async def _image(api: Api, db: asyncpg.Pool) -> tuple[dict[str, str], dict[str, Any], str]:
    op, s = await _stream(api)
    snap = await add_snapshot(api, db, s["id"], IMAGE)
    return op, snap, f"/api/v1/snapshots/{snap['id']}/image"


async def test_image_validators_and_cache_headers(api: Api, db: asyncpg.Pool) -> None:
    op, snap, url = await _image(api, db)
    r = await api.client.get(url, headers=op)
    assert r.status_code == 200 and r.content == IMAGE
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-length"] == str(len(IMAGE))
    assert r.headers["etag"] == f'"{snap["sha256"]}"'
    assert r.headers["last-modified"] == format_datetime(snap["created_at"], usegmt=True)
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"

    latest = await api.client.get(
        f"/api/v1/streams/{snap['stream_id']}/snapshots/latest/image", headers=op
    )
    assert latest.status_code == 200 and latest.content == IMAGE
    assert latest.headers["cache-control"] == "private, no-cache"
    assert latest.headers["etag"] == r.headers["etag"]


async def test_conditional_requests_answer_304(api: Api, db: asyncpg.Pool) -> None:
    op, snap, url = await _image(api, db)
    etag = f'"{snap["sha256"]}"'
    last_modified = format_datetime(snap["created_at"], usegmt=True)
    for match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = await api.client.get(url, headers={**op, "If-None-Match": match})
        assert r.status_code == 304, match
        assert r.content == b"" and r.headers["etag"] == etag
    r = await api.client.get(url, headers={**op, "If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == IMAGE

    r = await api.client.get(url, headers={**op, "If-Modified-Since": last_modified})
    assert r.status_code == 304
    earlier = "Mon, 01 Jan 2024 00:00:00 GMT"
    r = await api.client.get(url, headers={**op, "If-Modified-Since": earlier})
    assert r.status_code == 200 and r.content == IMAGE
    r = await api.client.get(url, headers={**op, "If-Modified-Since": "yesterday"})
    assert r.status_code == 200  # an invalid date is ignored
    # If-None-Match decides when both are sent.
    both = {"If-None-Match": '"other"', "If-Modified-Since": last_modified}
    assert (await api.client.get(url, headers={**op, **both})).status_code == 200

    latest = f"/api/v1/streams/{snap['stream_id']}/snapshots/latest/image"
    r = await api.client.get(latest, headers={**op, "If-None-Match": etag})
    assert r.status_code == 304 and r.headers["cache-control"] == "private, no-cache"


async def test_byte_ranges(api: Api, db: asyncpg.Pool) -> None:
    op, snap, url = await _image(api, db)
    size = len(IMAGE)

    async def get(range_: str, **extra: str) -> Any:
        return await api.client.get(url, headers={**op, "Range": range_, **extra})

    r = await get("bytes=0-99")
    assert r.status_code == 206
    assert r.content == IMAGE[:100] and r.headers["content-length"] == "100"
    assert r.headers["content-range"] == f"bytes 0-99/{size}"
    r = await get("bytes=-100")
    assert r.status_code == 206 and r.content == IMAGE[-100:]
    assert r.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
    r = await get("bytes=1000-")
    assert r.status_code == 206 and r.content == IMAGE[1000:]
    r = await get("bytes=1000-5000")  # the end is clamped to the file
    assert r.status_code == 206 and r.headers["content-range"] == f"bytes 1000-1023/{size}"
    r = await get(f"bytes=-{size * 2}")  # a suffix longer than the file: all of it
    assert r.status_code == 206 and r.content == IMAGE

    for bad in ("bytes=2000-", "bytes=abc", "bytes=10-5", "lines=0-1", "bytes=-0", "bytes=--1"):
        r = await get(bad)
        assert r.status_code == 416, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["content-range"] == f"bytes */{size}"
        assert r.json()["status"] == 416

    r = await get("bytes=0-1,5-6")  # several ranges: the whole file
    assert r.status_code == 200 and r.content == IMAGE
    # If-Range: the range holds only while the validator is current.
    r = await get("bytes=0-9", **{"If-Range": f'"{snap["sha256"]}"'})
    assert r.status_code == 206 and r.content == IMAGE[:10]
    r = await get("bytes=0-9", **{"If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == IMAGE


async def test_a_large_image_is_streamed_in_ranges(api: Api, db: asyncpg.Pool) -> None:
    op, s = await _stream(api)
    data = bytes(range(256)) * (12 * 1024 + 3)  # about 3 MiB: many chunks, an odd size
    snap = await add_snapshot(api, db, s["id"], data)
    url = f"/api/v1/snapshots/{snap['id']}/image"
    r = await api.client.get(url, headers=op)
    assert r.status_code == 200 and r.content == data
    r = await api.client.get(url, headers={**op, "Range": "bytes=100000-2999999"})
    assert r.status_code == 206 and r.content == data[100000:3000000]


async def test_another_tenants_snapshots_are_404(api: Api, db: asyncpg.Pool) -> None:
    _, snap, url = await _image(api, db)
    _, bob = await api.tenant_user("admin")
    paths = (
        url,
        f"/api/v1/streams/{snap['stream_id']}/snapshots/latest/image",
        f"/api/v1/streams/{snap['stream_id']}/snapshots",
    )
    for path in paths:
        r = await api.client.get(path, headers=bob)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.post(
        f"/api/v1/streams/{snap['stream_id']}/snapshots", params={"max_age": 60}, headers=bob
    )
    assert r.status_code == 404


async def test_snapshot_list_pages_newest_first(api: Api, db: asyncpg.Pool) -> None:
    op, s = await _stream(api)
    made = [await add_snapshot(api, db, s["id"], IMAGE + bytes([i])) for i in range(5)]
    # Two share a timestamp: the id breaks the tie, and no row is skipped or repeated.
    await db.execute(
        "UPDATE snapshots SET created_at = $1 WHERE id = $2", made[1]["created_at"], made[2]["id"]
    )
    expected = await db.fetch(
        "SELECT id FROM snapshots WHERE stream_id = $1 ORDER BY created_at DESC, id",
        uuid.UUID(s["id"]),
    )
    url = f"/api/v1/streams/{s['id']}/snapshots"
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        r = await api.client.get(url, params=params, headers=op)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}
    assert seen == [str(row["id"]) for row in expected]
    assert pages == 3
    first = (await api.client.get(url, params={"limit": 1}, headers=op)).json()["items"][0]
    assert first["image_url"].endswith(f"/api/v1/snapshots/{first['id']}/image")
    assert first["size_bytes"] == len(IMAGE) + 1 and first["width"] == 320

    # Another stream's snapshots never appear; a new one shows up at the top.
    other = await api.stream(op, name="other")
    await add_snapshot(api, db, other["id"], b"other")
    assert len((await api.client.get(url, headers=op)).json()["items"]) == 5

    for bad in ({"cursor": "bm90LWpzb24"}, {"cursor": "!!"}, {"limit": 0}, {"limit": 501}):
        r = await api.client.get(url, params=bad, headers=op)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.get(f"/api/v1/streams/{uuid.uuid4()}/snapshots", headers=op)
    assert r.status_code == 404
