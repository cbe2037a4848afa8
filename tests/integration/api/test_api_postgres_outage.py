"""Postgres stopped and started again under a running api: each request answers a 503
problem with Retry-After (reads cached before still answer 200), the log gets one line when
the outage starts and one when it ends, and the api serves again by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from lookout_api.entrypoints.errors import Outage, install_error_handlers
from lookout_api.entrypoints.http import create_app
from lookout_api.settings import ApiSettings
from lookout_shared.db import DatabaseUnreachable
from pydantic import SecretStr

from .conftest import PASSWORD, Api

ROOT = Path(__file__).resolve().parents[3]
PROBLEM = "application/problem+json"
# Lines that are not the api answering requests: the test client's own, and loops with
# their own backoff, whose lines follow time, not the number of requests (the pool
# restoring its connection floor, the outbox relay).
# Background tasks with their own backoff (one line each per outage), not request handling.
NOT_REQUESTS = (
    "httpx",
    "asyncpg.pool",
    "lookout_shared.outbox",
    "lookout_shared.notified_cache",  # the principal-changes listener
    "lookout.access",  # the access line: one per request by design, not an error report
)


def _stack(command: str) -> None:
    env = {**os.environ, "LOOKOUT_STACK": os.environ.get("LOOKOUT_STACK", "test")}
    subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), command], env=env, check=True)


@contextlib.asynccontextmanager
async def postgres_stopped() -> AsyncIterator[None]:
    await asyncio.to_thread(_stack, "stop-postgres")
    try:
        yield
    finally:
        await asyncio.to_thread(_stack, "start-postgres")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(NOT_REQUESTS)]


async def test_postgres_down_answers_503_with_retry_after_and_logs_once_not_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _, admin = await api.tenant_user("admin")
    stream = await api.stream(admin)
    r = await api.client.post(
        "/api/v1/api-keys", json={"name": "machine", "role": "viewer"}, headers=admin
    )
    machine = {
        "Authorization": f"Bearer {r.json()['secret']}"
    }  # never used yet: looked up in Postgres
    cached = await api.client.get(f"/api/v1/streams/{stream['id']}", headers=admin)
    assert cached.status_code == 200
    caplog.clear()
    caplog.set_level(logging.INFO)
    requests = 0
    async with postgres_stopped():
        for i in range(5):
            for method, path, kwargs in (
                ("GET", f"/api/v1/streams?limit={i + 1}", {"headers": admin}),
                ("GET", f"/api/v1/streams/{uuid.uuid4()}", {"headers": admin}),
                ("GET", "/api/v1/audit", {"headers": admin}),
                ("GET", "/api/v1/dashboard/summary", {"headers": admin}),
                ("GET", "/api/v1/users/me", {"headers": admin}),
                ("GET", "/api/v1/streams?limit=2", {"headers": machine}),
                (
                    "POST",
                    "/api/v1/streams",
                    {"headers": admin, "json": {"name": "n", "url": "rtsp://c/x"}},
                ),
                (
                    "POST",
                    "/api/v1/auth/token",
                    {"data": {"username": "root@example.com", "password": PASSWORD}},
                ),
            ):
                r = await api.client.request(method, path, **kwargs)  # type: ignore[arg-type]
                requests += 1
                assert r.status_code == 503, (method, path, r.status_code, r.text)
                assert r.headers["content-type"] == PROBLEM
                assert r.headers["retry-after"] == "5"
                assert r.json()["detail"] == "the database is unavailable; try again shortly"
            # A read cached before the outage is still answered.
            again = await api.client.get(f"/api/v1/streams/{stream['id']}", headers=admin)
            assert again.status_code == 200 and again.json() == cached.json()
        lines = request_lines(caplog)
        assert requests == 40
        assert [r.getMessage().split(",")[0] for r in lines] == ["Postgres unavailable"], [
            r.getMessage() for r in lines
        ]
        assert not any(r.exc_info for r in lines)

    # Served again without restarting the api: no request is refused for long.
    deadline = time.monotonic() + 30
    while True:
        r = await api.client.get("/api/v1/streams?limit=9", headers=admin)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert r.status_code == 200, r.text
    assert (await api.login("root@example.com"))["Authorization"].startswith("Bearer ")
    assert (await api.client.get("/api/v1/streams?limit=2", headers=machine)).status_code == 200
    while not any("answers again" in m.getMessage() for m in request_lines(caplog)):
        assert time.monotonic() < deadline, "the end of the outage was never logged"
        await asyncio.sleep(0.2)
    messages = [r.getMessage() for r in request_lines(caplog)]
    assert len(messages) == 2, messages
    assert messages[1].startswith("Postgres answers again after")
    assert f"{requests} request(s) were answered 503" in messages[1]


# Every way asyncpg says Postgres cannot be used now; the real outage above produces the
# first ones (refused, connection lost, closed connection), the others are rare to provoke.
UNAVAILABLE_ERRORS = [
    DatabaseUnreachable("cannot connect to Postgres: ConnectionRefusedError(111)"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
    TimeoutError(),  # a pool acquire or a query over its timeout
]


@pytest.mark.parametrize("error", UNAVAILABLE_ERRORS, ids=lambda e: type(e).__name__)
async def test_each_kind_of_unavailable_postgres_answers_503_not_500(
    db: asyncpg.Pool, error: Exception
) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.state.postgres_outage = Outage(lambda: db.fetchval("SELECT 1"))

    @app.get("/read")
    async def read() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            r = await client.get("/read")
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert r.headers["retry-after"] == "5"
    finally:
        await app.state.postgres_outage.close()


async def test_an_interface_error_that_is_a_bug_stays_a_500() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/read")
    async def read() -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/read")).status_code == 500


@contextlib.asynccontextmanager
async def role_with_one_connection(db: asyncpg.Pool, dsn: str) -> AsyncIterator[str]:
    """A Postgres role allowed one connection at a time, with the api's privileges: its DSN."""
    name = f"one_conn_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    await db.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' CONNECTION LIMIT 1")
    await db.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}")
    await db.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
    url = urlsplit(dsn)
    try:
        yield url._replace(netloc=f"{name}:{password}@{url.hostname}:{url.port}").geturl()
    finally:
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
        )
        await db.execute(f"DROP OWNED BY {name}")
        await db.execute(f"DROP ROLE {name}")


async def test_postgres_out_of_connection_slots_answers_503_not_500(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    """Requests that need a second connection from a role Postgres allows only one get
    'too many connections' from Postgres itself: 503, like an outage."""
    base = ApiSettings(storage_dir=str(tmp_path), redis_prefix=f"t-{uuid.uuid4().hex[:8]}:")
    async with role_with_one_connection(db, base.database_url.get_secret_value()) as dsn:
        settings = base.model_copy(
            update={"database_url": SecretStr(dsn), "db_pool_min": 1, "db_pool_max": 8}
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                form = {"username": "nobody@example.com", "password": "x"}
                # Each login holds a connection while it queries; several at once need more.
                answers = await asyncio.gather(
                    *(client.post("/api/v1/auth/token", data=form) for _ in range(8))
                )
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {401, 503} and 503 in statuses, statuses
    refused = [r for r in answers if r.status_code == 503]
    assert all(r.headers["retry-after"] == "5" for r in refused)
    assert all(r.headers["content-type"] == PROBLEM for r in refused)


async def http_exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str
) -> tuple[int, dict[str, str]]:
    """One keep-alive HTTP/1.1 GET on an open connection: (status, headers)."""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
    await reader.readexactly(int(headers["content-length"]))
    return int(head[0].split()[1]), headers


async def test_postgres_down_keeps_http_connections_open_not_dropped(api: Api) -> None:
    """Through a real HTTP server: every request of one keep-alive connection is answered,
    during the outage and after it, on that same connection."""
    _, admin = await api.tenant_user("admin")
    token = admin["Authorization"].removeprefix("Bearer ")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(api.settings), log_level="warning", log_config=None)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done(), serving.result()
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        async with postgres_stopped():
            for i in range(10):
                status, headers = await http_exchange(
                    reader, writer, f"/api/v1/streams?limit={i + 1}", token
                )
                assert (status, headers["retry-after"]) == (503, "5")
                assert headers.get("connection") != "close"
        deadline = time.monotonic() + 30
        while (await http_exchange(reader, writer, "/api/v1/audit", token))[0] != 200:
            assert time.monotonic() < deadline, "never served again"
            await asyncio.sleep(0.2)
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
        sock.close()
