"""Changing and deleting streams: ETags, conditional requests, events through the outbox,
bulk atomicity, and the audit log."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from .conftest import Api


async def outbox(db: asyncpg.Pool) -> list[tuple[str, int]]:
    rows = await db.fetch("SELECT message_type, body FROM outbox ORDER BY id")
    return [(r["message_type"], r["body"]["entity_version"]) for r in rows]


async def test_patch_and_delete_with_etags_and_events(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    s = await api.stream(op, name="gate", url="rtsp://u:pw@cam.example.com/a")
    sid, tag1 = s["id"], f'"{s["id"]}.1"'
    await db.execute("UPDATE streams SET status = 'online', width = 640 WHERE id = $1", s["id"])

    got = await api.client.get(f"/api/v1/streams/{sid}", headers={**op, "If-None-Match": tag1})
    assert got.status_code == 304 and got.headers["etag"] == tag1 and got.content == b""

    r = await api.client.patch(
        f"/api/v1/streams/{sid}",
        json={"name": "gate 2", "tags": ["A"]},
        headers={**op, "If-Match": tag1},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["tags"], body["version"]) == ("gate 2", ["a"], 2)
    assert body["status"] == "online" and body["width"] == 640  # a rename keeps the probe
    assert r.headers["etag"] == f'"{sid}.2"'
    got = await api.client.get(f"/api/v1/streams/{sid}", headers={**op, "If-None-Match": tag1})
    assert got.status_code == 200 and got.json() == body

    # A stale ETag: 412, nothing changes.
    r = await api.client.patch(
        f"/api/v1/streams/{sid}", json={"name": "late"}, headers={**op, "If-Match": tag1}
    )
    assert r.status_code == 412 and "version 2" in r.json()["detail"]
    r = await api.client.delete(f"/api/v1/streams/{sid}", headers={**op, "If-Match": tag1})
    assert r.status_code == 412

    # A new URL: probed again, credentials masked, status back to pending.
    r = await api.client.patch(
        f"/api/v1/streams/{sid}",
        json={"url": "https://v:pw2@cam.example.com/live.m3u8"},
        headers={**op, "If-Match": f'"{sid}.2"'},
    )
    body = r.json()
    assert body["url"] == "https://***:***@cam.example.com/live.m3u8"
    assert (body["kind"], body["status"], body["width"], body["version"]) == (
        "hls",
        "pending",
        None,
        3,
    )

    # A patch that changes nothing keeps the version and emits nothing.
    before = await outbox(db)
    r = await api.client.patch(f"/api/v1/streams/{sid}", json={"name": "gate 2"}, headers=op)
    assert r.json()["version"] == 3 and await outbox(db) == before

    r = await api.client.delete(f"/api/v1/streams/{sid}", headers={**op, "If-Match": f'"{sid}.3"'})
    assert r.status_code == 204
    assert (await api.client.get(f"/api/v1/streams/{sid}", headers=op)).status_code == 404
    assert await outbox(db) == [
        ("stream.created", 1),
        ("stream.probe", 1),
        ("stream.updated", 2),
        ("stream.updated", 3),
        ("stream.probe", 3),
        ("stream.deleted", 4),
    ]
    # The outbox never carries the URL (it may hold credentials).
    assert "pw" not in str(await db.fetch("SELECT body FROM outbox"))


async def test_disabling_and_reenabling(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    sid = (await api.stream(op))["id"]
    r = await api.client.patch(f"/api/v1/streams/{sid}", json={"enabled": False}, headers=op)
    assert (r.json()["status"], r.json()["enabled"]) == ("disabled", False)
    r = await api.client.patch(f"/api/v1/streams/{sid}", json={"enabled": True}, headers=op)
    assert (r.json()["status"], r.json()["version"]) == ("pending", 3)
    assert [t for t, _ in await outbox(db)].count("stream.probe") == 2


async def test_concurrent_patches_with_one_etag_one_wins(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    for _ in range(5):
        s = await api.stream(op)
        headers = {**op, "If-Match": f'"{s["id"]}.1"'}
        results = await asyncio.gather(
            *(
                api.client.patch(
                    f"/api/v1/streams/{s['id']}", json={"name": f"n{i}"}, headers=headers
                )
                for i in range(2)
            )
        )
        assert sorted(r.status_code for r in results) == [200, 412]
        winner = next(r for r in results if r.status_code == 200).json()
        stored = await db.fetchrow("SELECT name, version FROM streams WHERE id = $1", winner["id"])
        assert stored is not None
        assert (stored["name"], stored["version"]) == (winner["name"], 2)


async def test_bulk_creates_and_updates_in_one_transaction(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    existing = await api.stream(op, name="old")
    items: list[dict[str, Any]] = [
        {"name": f"cam {i}", "url": f"rtsp://cam.example.com/{i}", "tags": ["bulk"]}
        for i in range(3)
    ]
    items.append({"id": existing["id"], "version": 1, "name": "renamed", "enabled": False})
    r = await api.client.post("/api/v1/streams:bulk", json={"items": items}, headers=op)
    assert r.status_code == 200, r.text
    out = r.json()["items"]
    assert [(o["index"], o["action"]) for o in out] == [
        (0, "created"),
        (1, "created"),
        (2, "created"),
        (3, "updated"),
    ]
    assert [o["stream"]["name"] for o in out] == ["cam 0", "cam 1", "cam 2", "renamed"]
    assert out[3]["stream"]["version"] == 2 and out[3]["stream"]["status"] == "disabled"
    types = [t for t, _ in await outbox(db)]
    assert types.count("stream.created") == 4 and types.count("stream.updated") == 1
    # The single create's probe, and one command for the bulk's three new streams.
    assert types.count("stream.probe") == 2
    actions = await db.fetch("SELECT action FROM audit_log WHERE entity_type = 'stream'")
    assert sorted(a["action"] for a in actions) == ["stream.created"] * 4 + ["stream.updated"]


async def test_a_bulk_write_sends_its_probes_five_streams_a_command_in_item_order_after_its_events(
    api: Api, db: asyncpg.Pool
) -> None:
    tenant, op = await api.tenant_user("operator")
    moved = await api.stream(op, name="moved")
    start = await db.fetchval("SELECT max(id) FROM outbox")
    items: list[dict[str, Any]] = [
        {"name": f"cam {i}", "url": f"rtsp://cam.example.com/{i}"} for i in range(25)
    ]
    items.insert(12, {"id": moved["id"], "url": "rtsp://cam.example.com/moved"})  # a new URL
    r = await api.client.post("/api/v1/streams:bulk", json={"items": items}, headers=op)
    assert r.status_code == 200, r.text
    in_item_order = [o["stream"]["id"] for o in r.json()["items"]]

    rows = await db.fetch("SELECT message_type, body FROM outbox WHERE id > $1 ORDER BY id", start)
    assert [r["message_type"] for r in rows] == (
        ["stream.created"] * 25 + ["stream.updated"] + ["stream.probe"] * 6
    )
    probes = [r["body"] for r in rows if r["message_type"] == "stream.probe"]
    batches = [p["data"]["stream_ids"] for p in probes]
    assert [len(b) for b in batches] == [5, 5, 5, 5, 5, 1]
    assert [i for b in batches for i in b] == in_item_order
    assert {p["tenant_id"] for p in probes} == {tenant}
    assert [p["entity_id"] for p in probes] == [b[0] for b in batches]


async def test_one_bad_bulk_item_writes_nothing(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    existing = await api.stream(op, name="old")
    before = (
        await db.fetchval("SELECT count(*) FROM outbox"),
        await db.fetchval("SELECT count(*) FROM audit_log"),
    )
    items: list[dict[str, Any]] = [{"name": f"ok {i}", "url": f"rtsp://cam/{i}"} for i in range(5)]
    items += [
        {"name": "bad", "url": "file:///etc/passwd"},
        {"name": "no url"},
        {"id": existing["id"], "version": 7, "name": "stale"},
        {"name": "bad tag", "url": "rtsp://cam/t", "tags": ["no spaces"]},
    ]
    r = await api.client.post("/api/v1/streams:bulk", json={"items": items}, headers=op)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert [(e["loc"][2], e["loc"][3]) for e in errors] == [
        (5, "url"),
        (6, "url"),
        (7, "version"),
        (8, "tags"),
    ]
    assert "media directory" in errors[0]["msg"] or "file" in errors[0]["msg"]
    assert await db.fetchval("SELECT count(*) FROM streams") == 1
    after = (
        await db.fetchval("SELECT count(*) FROM outbox"),
        await db.fetchval("SELECT count(*) FROM audit_log"),
    )
    assert after == before
    got = (await api.client.get(f"/api/v1/streams/{existing['id']}", headers=op)).json()
    assert got["version"] == 1

    # Schema errors carry field paths too; over 500 items is refused before any work.
    r = await api.client.post(
        "/api/v1/streams:bulk", json={"items": [{"name": 5, "url": "rtsp://c/x"}]}, headers=op
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:4] == ["body", "items", 0, "name"]
    many = [{"name": f"n{i}", "url": f"rtsp://c/{i}"} for i in range(501)]
    r = await api.client.post("/api/v1/streams:bulk", json={"items": many}, headers=op)
    assert r.status_code == 422
    assert await db.fetchval("SELECT count(*) FROM streams") == 1


async def test_bulk_of_500(api: Api, db: asyncpg.Pool) -> None:
    _, op = await api.tenant_user("operator")
    items = [{"name": f"n{i}", "url": f"rtsp://cam.example.com/{i}"} for i in range(500)]
    r = await api.client.post("/api/v1/streams:bulk", json={"items": items}, headers=op)
    assert r.status_code == 200 and len(r.json()["items"]) == 500
    assert r.headers.get("content-encoding") == "gzip"
    assert await db.fetchval("SELECT count(*) FROM streams") == 500
    assert (
        await db.fetchval("SELECT count(*) FROM outbox WHERE message_type = 'stream.created'")
        == 500
    )


async def test_audit_records_every_write_and_pages(api: Api) -> None:
    tenant, admin = await api.tenant_user("admin")
    s = await api.stream(admin, name="cam", url="rtsp://u:secret@cam/x")
    await api.client.patch(f"/api/v1/streams/{s['id']}", json={"name": "cam2"}, headers=admin)
    await api.client.delete(f"/api/v1/streams/{s['id']}", headers=admin)
    key = await api.client.post(
        "/api/v1/api-keys", json={"name": "bot", "role": "viewer"}, headers=admin
    )
    assert key.status_code == 201
    me = (await api.client.get("/api/v1/users/me", headers=admin)).json()

    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/audit", params=params, headers=admin)).json()
        entries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    actions = [e["action"] for e in entries]
    assert actions == [
        "api_key.created",
        "stream.deleted",
        "stream.updated",
        "stream.created",
        "user.created",
        "tenant.created",
    ]
    created = entries[3]
    assert created["changes"]["url"] == "rtsp://***:***@cam/x"
    assert created["actor_id"] == me["id"] and created["actor_kind"] == "user"
    assert entries[2]["changes"]["name"] == {"from": "cam", "to": "cam2"}
    assert all(e["tenant_id"] == tenant for e in entries)
    assert "secret" not in str(entries)


async def test_deleting_a_stream_fails_its_active_jobs_and_deletes_its_snapshots(
    api: Api, db: asyncpg.Pool
) -> None:
    """Every row the deletion changes or removes has its event, so the counts stay exact."""
    _, op = await api.tenant_user("operator")
    s = await api.stream(op, name="gate", url="rtsp://cam.example.com/a")
    done = await db.fetchrow(
        """INSERT INTO snapshot_jobs (id, tenant_id, stream_id, status, version)
           SELECT gen_random_uuid(), tenant_id, id, 'succeeded', 3 FROM streams WHERE id = $1
           RETURNING id, tenant_id""",
        s["id"],
    )
    assert done is not None
    snapshot_id = await db.fetchval(
        """INSERT INTO snapshots (id, tenant_id, stream_id, job_id, storage_key, content_type,
                                  size_bytes, sha256)
           VALUES (gen_random_uuid(), $1, $2, $3, 'aa/bb/x.jpg', 'image/jpeg', 1, 'x')
           RETURNING id""",
        done["tenant_id"],
        s["id"],
        done["id"],
    )
    queued = (await api.client.post(f"/api/v1/streams/{s['id']}/snapshots", headers=op)).json()
    await db.execute("DELETE FROM outbox")

    r = await api.client.delete(f"/api/v1/streams/{s['id']}", headers=op)
    assert r.status_code == 204, r.text
    events = await db.fetch("SELECT message_type, body FROM outbox ORDER BY id")
    by_type = {
        (e["message_type"], e["body"]["entity_id"], e["body"]["entity_version"]) for e in events
    }
    assert by_type == {
        ("stream.deleted", s["id"], 2),
        ("snapshot_job.failed", queued["job_id"], 2),
        ("snapshot.deleted", str(snapshot_id), 2),
    }
    job = (await api.client.get(f"/api/v1/jobs/{queued['job_id']}", headers=op)).json()
    assert (job["status"], job["error"], job["stream_id"]) == ("failed", "stream deleted", None)
    assert await db.fetchval("SELECT count(*) FROM snapshot_jobs WHERE stream_id IS NULL") == 2
    assert await db.fetchval("SELECT count(*) FROM snapshots") == 0
