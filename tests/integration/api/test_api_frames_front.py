"""latest.jpg of a hot frame answered in front of the app (entrypoints/latest_jpgs.py): the
same answer, validators and refusals as the route, the image the encoder keeps, and of the
frame in Redis only its identity, so a newer frame shows the moment it is published."""

from __future__ import annotations

from lookout_api.metrics import CACHE_REQUESTS as REQUESTS

from .conftest import Api
from .test_api_frames import jpeg, publish, size_of
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
    # A newer frame: its identity changed, so the front never answers the old image.
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
