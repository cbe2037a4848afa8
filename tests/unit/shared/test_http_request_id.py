"""Request ids: taken from ``X-Request-ID`` when sane, made otherwise, answered in the
response, and on every log line of the request together with its tenant."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from lookout_shared.http import add_ops_routes
from lookout_shared.logs import JsonFormatter, bind_tenant

log = logging.getLogger("tests.request_id")
TENANT = "0b6f8a52-4a4e-4a57-9f5e-1d2c3b4a5f60"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("tests"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield stream
    log.removeHandler(handler)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.get("/anonymous")
    async def anonymous() -> dict[str, str]:
        log.info("anonymous work")
        return {}

    @app.get("/tenant")
    async def tenant() -> dict[str, str]:
        bind_tenant(TENANT)  # what the api's authentication does
        log.info("tenant work")
        return {}

    add_ops_routes(app, dict)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_sane_request_id_is_kept_answered_and_logged(
    client: httpx.AsyncClient, lines: io.StringIO
) -> None:
    r = await client.get("/tenant", headers={"X-Request-ID": "req-42.a:b_c"})
    assert r.headers["X-Request-ID"] == "req-42.a:b_c"
    [entry] = entries(lines)
    assert entry["request_id"] == "req-42.a:b_c"
    assert entry["tenant_id"] == TENANT


@pytest.mark.parametrize(
    "sent", ["", "a" * 129, "has space", 'quote"d', "semi;colon", "ünïcode", "tab\there"]
)
async def test_an_unfit_request_id_is_replaced(
    client: httpx.AsyncClient, lines: io.StringIO, sent: str
) -> None:
    r = await client.get("/anonymous", headers={b"X-Request-ID": sent.encode("utf-8")})
    made = r.headers["X-Request-ID"]
    assert made != sent and len(made) == 32 and int(made, 16) >= 0
    assert entries(lines)[0]["request_id"] == made


async def test_each_request_gets_its_own_id_and_no_tenant_leaks(
    client: httpx.AsyncClient, lines: io.StringIO
) -> None:
    first = await client.get("/tenant")
    second = await client.get("/anonymous")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    tenant_line, anonymous_line = entries(lines)
    assert tenant_line["tenant_id"] == TENANT
    assert "tenant_id" not in anonymous_line
    assert anonymous_line["request_id"] == second.headers["X-Request-ID"]
    # Outside any request, no id at all.
    log.info("between requests")
    assert "request_id" not in entries(lines)[-1]


async def test_problem_answers_carry_the_request_id_too(client: httpx.AsyncClient) -> None:
    r = await client.get("/no-such-route", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 404
    assert r.headers["X-Request-ID"] == "abc-123"


def test_made_request_ids_are_unique_plain_tokens() -> None:
    from lookout_shared.http import new_request_id

    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and i.isalnum() for i in ids)
