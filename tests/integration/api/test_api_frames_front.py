"""latest.jpg of a hot frame answered in front of the app (entrypoints/latest_jpgs.py): the
same answer, validators and refusals as the route, the image the encoder keeps, and the
frame's identity kept in process until Redis says its key changed: a hit costs no round
trip, and a newer frame shows as soon as its invalidation arrives."""

from __future__ import annotations

import asyncio
import time
import uuid

from lookout_api.metrics import CACHE_REQUESTS as REQUESTS
from lookout_shared.hot_frames import HotFrame, frame_key, to_fields

from .conftest import Api
from .test_api_frames import identity_dropped, jpeg, publish, size_of
from .test_api_signed_urls import local, urls_for


def hits() -> float:
    return float(REQUESTS.labels("frame", "hit")._value.get())


async def test_a_repeated_hot_jpg_is_answered_in_front_with_the_routes_headers(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(1280, 720), (1280, 720))
    url = f"/api/v1/streams/{stream['id']}/latest.jpg?width=320"
    first = await api.client.get(url, headers=op)  # the route encodes it
    assert first.status_code == 200, first.text
    before = hits()
    again = await api.client.get(url, headers=op)
    assert hits() == before + 1
    assert again.content == first.content and size_of(again.content) == (320, 180)
    for name in ("etag", "last-modified", "cache-control", "x-frame-source", "content-type"):
        assert again.headers[name] == first.headers[name], name
    assert 0 <= float(again.headers["x-frame-age"]) < 5
    not_modified = await api.client.get(url, headers={**op, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == first.headers["etag"]
    assert hits() == before + 2
    # A newer frame: once Redis has said its key changed, the front never answers the old image.
    await publish(api, stream["id"], jpeg(1280, 720, (0, 0, 255)), (1280, 720))
    newer = await api.client.get(url, headers={**op, "If-None-Match": first.headers["etag"]})
    assert newer.status_code == 200 and newer.headers["etag"] != first.headers["etag"]


async def test_the_front_refuses_nothing_the_route_would_not_and_serves_no_other_tenant(
    api: Api,
) -> None:
    _, op = await api.tenant_user("operator")
    _, stranger = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(640, 360), (640, 360))
    url = f"/api/v1/streams/{stream['id']}/latest.jpg?width=320"
    assert (await api.client.get(url, headers=op)).status_code == 200
    before = hits()
    r = await api.client.get(url, headers=stranger)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await api.client.get(url)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = await api.client.get(url + "&width=9999", headers=op)
    assert r.status_code in (400, 422), r.text
    r = await api.client.get(url + "&exp=1&sig=00", headers=op)  # checked by the route
    assert r.status_code in (200, 422), r.text
    assert hits() == before


async def test_a_signed_url_is_answered_in_front_and_a_changed_one_refused(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(640, 360), (640, 360))
    signed = local((await urls_for(api, op, stream["id"]))["latest_jpg"]) + "&width=320"
    first = await api.client.get(signed)
    assert first.status_code == 200, first.text
    before = hits()
    again = await api.client.get(signed)
    assert again.status_code == 200 and again.content == first.content
    assert hits() == before + 1
    forged = signed.replace("sig=", "sig=0") if "sig=" in signed else signed
    r = await api.client.get(forged)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert hits() == before + 1


async def hget_calls(api: Api) -> int:
    stats = await api.app.state.deps.redis.info("commandstats")
    return int(stats.get("cmdstat_hget", {}).get("calls", 0))


async def test_a_hot_jpg_hit_costs_no_redis_round_trip(api: Api) -> None:
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    await publish(api, stream["id"], jpeg(640, 360), (640, 360))
    url = f"/api/v1/streams/{stream['id']}/latest.jpg?width=320"
    assert (await api.client.get(url, headers=op)).status_code == 200  # the route encodes it
    assert (await api.client.get(url, headers=op)).status_code == 200  # the front reads Redis
    before, calls = hits(), await hget_calls(api)
    for _ in range(20):
        assert (await api.client.get(url, headers=op)).status_code == 200
    assert hits() == before + 20
    assert await hget_calls(api) == calls


async def test_a_frame_written_behind_the_apis_back_is_served_within_the_bound(api: Api) -> None:
    """A worker (another process) publishes: the kept identity goes when Redis says so, and
    the newer frame is answered well within the channel's bound (heartbeat + timeout)."""
    _, op = await api.tenant_user("operator")
    stream = await api.stream(op)
    stream_id = uuid.UUID(stream["id"])
    await publish(api, stream["id"], jpeg(640, 360), (640, 360))
    url = f"/api/v1/streams/{stream['id']}/latest.jpg?width=320"
    first = await api.client.get(url, headers=op)
    assert (await api.client.get(url, headers=op)).headers["etag"] == first.headers["etag"]
    deps = api.app.state.deps
    newer = HotFrame(jpeg(640, 360, (0, 0, 255)), time.time(), 640, 360, "worker-test")
    written = time.monotonic()
    await deps.redis.hset(frame_key(deps.keys, stream_id), mapping=to_fields(newer))
    while (r := await api.client.get(url, headers=op)).headers["etag"] == first.headers["etag"]:
        assert time.monotonic() - written < 1.0, "the old frame was served past the bound"
        await asyncio.sleep(0.001)
    assert r.status_code == 200 and r.headers["x-frame-source"] == "hot"
    # The frame gone (the worker stopped, the key expired): the front no longer answers it.
    await deps.redis.delete(frame_key(deps.keys, stream_id))
    await identity_dropped(api, stream["id"])
    gone = await api.client.get(url, headers=op)
    assert gone.headers.get("x-frame-source") != "hot", gone.headers
