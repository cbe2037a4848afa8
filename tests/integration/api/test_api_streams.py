"""Auth, tenancy and streams through the real app, Postgres and outbox."""

from __future__ import annotations

import uuid

import asyncpg

from .conftest import Api


async def outbox_types(db: asyncpg.Pool) -> list[str]:
    rows = await db.fetch("SELECT message_type FROM outbox ORDER BY id")
    return [r["message_type"] for r in rows]


async def test_wrong_password_is_a_problem_401(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/auth/token", data={"username": "root@example.com", "password": "nope"}
    )
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "wrong e-mail or password"


async def test_requests_without_a_token_are_refused(api: Api) -> None:
    r = await api.client.get("/api/v1/streams")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.client.get("/api/v1/streams", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401


async def test_operator_creates_a_stream_and_its_events(api: Api, db: asyncpg.Pool) -> None:
    _, headers = await api.tenant_user("operator")
    r = await api.client.post(
        "/api/v1/streams",
        json={"name": "Gate", "url": "rtsp://admin:s3cret@cam.example.com/live", "tags": ["Front"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"] == "rtsp://***:***@cam.example.com/live"
    assert body["kind"] == "rtsp" and body["tags"] == ["front"] and body["version"] == 1
    assert r.headers["etag"] == f'"{body["id"]}.1"'
    assert await outbox_types(db) == ["stream.created", "stream.probe"]
    probe = await db.fetchval("SELECT body FROM outbox WHERE message_type = 'stream.probe'")
    assert probe["data"] == {"stream_ids": [body["id"]]}  # one command, one stream
    got = await api.client.get(f"/api/v1/streams/{body['id']}", headers=headers)
    assert got.status_code == 200 and got.json() == body


async def test_bad_url_is_refused_and_changes_nothing(api: Api, db: asyncpg.Pool) -> None:
    _, headers = await api.tenant_user("operator")
    for url, fragment in [
        ("ftp://cam/x", "scheme 'ftp' is not allowed"),
        ("-i rtsp://cam/x", "must not start with '-'"),
        ("file:///etc/passwd", "inside the media directory"),
        ("rtsp://", "no host"),
    ]:
        r = await api.client.post(
            "/api/v1/streams", json={"name": "x", "url": url}, headers=headers
        )
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert fragment in r.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM streams") == 0
    assert await outbox_types(db) == []


async def test_other_tenants_stream_is_not_found(api: Api) -> None:
    _, alice = await api.tenant_user("operator")
    _, bob = await api.tenant_user("operator")
    r = await api.client.post(
        "/api/v1/streams", json={"name": "a", "url": "http://cam.example.com/a.jpg"}, headers=alice
    )
    stream_id = r.json()["id"]
    assert (await api.client.get(f"/api/v1/streams/{stream_id}", headers=bob)).status_code == 404
    r = await api.client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=bob)
    assert r.status_code == 404
    listing = await api.client.get("/api/v1/streams", headers=bob)
    assert listing.json()["items"] == []


async def test_viewer_cannot_create_streams(api: Api) -> None:
    _, viewer = await api.tenant_user("viewer")
    r = await api.client.post(
        "/api/v1/streams", json={"name": "a", "url": "rtsp://cam.example.com/a"}, headers=viewer
    )
    assert r.status_code == 403
    assert "operator role" in r.json()["detail"]


async def test_snapshot_requests_coalesce_on_the_active_job(api: Api, db: asyncpg.Pool) -> None:
    _, headers = await api.tenant_user("operator")
    r = await api.client.post(
        "/api/v1/streams", json={"name": "a", "url": "rtsp://cam.example.com/a"}, headers=headers
    )
    stream_id = r.json()["id"]
    first = await api.client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=headers)
    second = await api.client.post(f"/api/v1/streams/{stream_id}/snapshots", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert (first.json()["joined"], second.json()["joined"]) == (False, True)
    assert (await outbox_types(db)).count("snapshot.capture") == 1
    job = await api.client.get(
        first.json()["status_url"].removeprefix(api.settings.public_url), headers=headers
    )
    assert job.json()["status"] == "queued"


async def test_list_pages_with_a_cursor(api: Api) -> None:
    _, headers = await api.tenant_user("operator")
    for i in range(5):
        await api.client.post(
            "/api/v1/streams", json={"name": f"s{i}", "url": f"rtsp://cam/{i}"}, headers=headers
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/streams", params=params, headers=headers)).json()
        seen += [s["name"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["s4", "s3", "s2", "s1", "s0"]
    bad = await api.client.get("/api/v1/streams", params={"cursor": "!!"}, headers=headers)
    assert bad.status_code == 422


async def test_unknown_ids_and_malformed_ids(api: Api) -> None:
    _, headers = await api.tenant_user("viewer")
    assert (
        await api.client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=headers)
    ).status_code == 404
    r = await api.client.get("/api/v1/streams/not-a-uuid", headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
