"""Signed image URLs: made by POST .../image-urls, they open one image route of one stream
without credentials until they expire, and nothing else."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from lookout_shared import signed_urls as signing

from .conftest import Api, add_snapshot
from .test_api_frames import jpeg, publish, size_of


def local(url: str) -> str:
    """The path and query of an absolute URL the api built (the test client has its own
    base URL)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def urls_for(api: Api, headers: dict[str, str], stream_id: str, ttl: int = 600) -> Any:
    r = await api.client.post(
        f"/api/v1/streams/{stream_id}/image-urls", json={"ttl_seconds": ttl}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_signed_url_opens_latest_jpg_without_credentials(api: Api, db: asyncpg.Pool) -> None:
    tenant, op = await api.tenant_user("operator")
    _, viewer = await api.tenant_user("viewer", tenant)
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(1280, 720), (1280, 720))
    await add_snapshot(api, db, stream["id"], jpeg(640, 480))
    before = time.time()
    body = await urls_for(api, viewer, stream["id"], ttl=120)  # viewers may make them
    assert before + 119 <= body["expires_at"] <= time.time() + 121
    assert body["latest_jpg"].startswith(api.settings.public_url)

    r = await api.client.get(local(body["latest_jpg"]) + "&width=320")
    assert r.status_code == 200, r.text
    assert size_of(r.content) == (320, 180)
    snap = await api.client.get(local(body["latest_snapshot"]))
    assert snap.status_code == 200 and size_of(snap.content) == (640, 480)
    # An API key (or token) still works on the same route, signature or not.
    assert (await api.client.get(local(body["latest_jpg"]), headers=op)).status_code == 200


async def test_a_signed_url_opens_nothing_else(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    _, stranger = await api.tenant_user("operator")
    stream = await api.stream(op, "mine")
    sibling = await api.stream(op, "sibling")
    foreign = await api.stream(stranger, "theirs")
    for s in (stream, sibling, foreign):
        await publish(api, s["id"], jpeg(64, 48), (64, 48))
    url = local((await urls_for(api, op, stream["id"]))["latest_jpg"])
    query = parse_qs(urlsplit(url).query)
    exp, sig = query["exp"][0], query["sig"][0]
    assert (await api.client.get(url)).status_code == 200

    def refused(r: Any, *codes: int) -> None:
        assert r.status_code in codes, (r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"

    changed = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    refused(await api.client.get(url.replace(sig, changed)), 403)
    refused(await api.client.get(url.replace(f"exp={exp}", f"exp={int(exp) + 60}")), 403)
    # The same signature on another stream of the tenant, or of another tenant.
    refused(await api.client.get(url.replace(stream["id"], sibling["id"])), 403)
    refused(await api.client.get(url.replace(stream["id"], foreign["id"])), 403, 404)
    refused(await api.client.get(url.replace(stream["id"], str(uuid.uuid4()))), 404)
    # A latest.jpg signature does not open the snapshot route, nor any non-image route.
    snap = f"/api/v1/streams/{stream['id']}/snapshots/latest/image?exp={exp}&sig={sig}"
    refused(await api.client.get(snap), 403)
    for path in (f"/api/v1/streams/{stream['id']}", f"/api/v1/streams/{stream['id']}/snapshots"):
        refused(await api.client.get(f"{path}?exp={exp}&sig={sig}"), 401)
    refused(await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg"), 401)
    refused(await api.client.get(url.replace("&sig=", "&sig=zz")), 403)
    refused(await api.client.get(url.replace(f"exp={exp}", "exp=soon")), 403)


async def test_an_expired_signed_url_is_refused(api: Api) -> None:
    """Made with the api's own key and an expiry in the past: the server must refuse it
    however well it is signed."""
    tenant, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(64, 48), (64, 48))
    key = api.settings.signing_key()
    stream_id = uuid.UUID(stream["id"])
    past = int(time.time()) - 1
    sig = signing.signature(key, uuid.UUID(tenant), stream_id, "latest_jpg", past)
    r = await api.client.get(f"/api/v1/streams/{stream_id}/latest.jpg?exp={past}&sig={sig}")
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    future = int(time.time()) + 60
    sig = signing.signature(key, uuid.UUID(tenant), stream_id, "latest_jpg", future)
    r = await api.client.get(f"/api/v1/streams/{stream_id}/latest.jpg?exp={future}&sig={sig}")
    assert r.status_code == 200


async def test_signed_url_works_until_exp_then_not(api: Api) -> None:
    tenant, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(64, 48), (64, 48))
    key = api.settings.signing_key()
    exp = int(time.time()) + 2
    sig = signing.signature(key, uuid.UUID(tenant), uuid.UUID(stream["id"]), "latest_jpg", exp)
    url = f"/api/v1/streams/{stream['id']}/latest.jpg?exp={exp}&sig={sig}"
    assert (await api.client.get(url)).status_code == 200
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.1)  # past exp (whole seconds)
    assert (await api.client.get(url)).status_code == 403


@pytest.mark.parametrize("ttl", [0, 59, 86_401])
async def test_ttl_out_of_bounds_is_a_problem(api: Api, ttl: int) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    r = await api.client.post(
        f"/api/v1/streams/{stream['id']}/image-urls", json={"ttl_seconds": ttl}, headers=op
    )
    assert r.status_code == 422


async def test_batch_image_urls_for_a_grid_and_never_another_tenants(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    _, stranger = await api.tenant_user("operator")
    mine = [await api.stream(op, f"cam{i}") for i in range(3)]
    theirs = await api.stream(stranger)
    ids = [s["id"] for s in mine]
    r = await api.client.post("/api/v1/image-urls", json={"stream_ids": ids}, headers=op)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["stream_id"] for i in items] == ids
    assert all(f"/streams/{i['stream_id']}/latest.jpg?exp=" in i["latest_jpg"] for i in items)
    r = await api.client.post(
        "/api/v1/image-urls", json={"stream_ids": [*ids, theirs["id"]]}, headers=op
    )
    assert r.status_code == 404
    r = await api.client.post("/api/v1/image-urls", json={"stream_ids": []}, headers=op)
    assert r.status_code == 422
    assert (
        await api.client.post("/api/v1/image-urls", json={"stream_ids": ids})
    ).status_code == 401


async def test_an_api_key_opens_the_image_routes_and_makes_signed_urls(api: Api) -> None:
    _, admin = await api.tenant_user("admin")
    stream = await api.stream(admin)
    await publish(api, stream["id"], jpeg(320, 240), (320, 240))
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "wall", "role": "viewer"}, headers=admin
    )
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['secret']}"}
    image = await api.client.get(f"/api/v1/streams/{stream['id']}/latest.jpg", headers=key)
    assert image.status_code == 200 and size_of(image.content) == (320, 240)
    body = await urls_for(api, key, stream["id"])
    assert (await api.client.get(local(body["latest_jpg"]))).status_code == 200
