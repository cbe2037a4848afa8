"""No password, access token, API key or URL credential reaches any service's log, nor any
exported span, even at DEBUG.

The test does what handles secrets (logins right and wrong, an API key made and used, a
wrong one tried, streams whose URLs carry credentials captured and probed against a closed
loopback port, WebSockets authenticated by ``?token=``, subprotocol and ``auth`` frame,
a bad token), then reads every line each process wrote. Each secret carries a random marker
so it is found in any encoding (raw, form-encoded, JSON-escaped).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import uuid
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from .conftest import BIN, PASSWORD, SERVICES, System, free_port
from .test_first_flow import login, wait_for

pytestmark = pytest.mark.e2e


def marker() -> str:
    return secrets.token_hex(12)


async def test_no_secret_reaches_a_log_line_or_a_span(system: System) -> None:
    found: dict[str, str] = {}  # what must never show up → what it is
    root_email, admin_email = (f"{who}-{uuid.uuid4().hex[:8]}@example.com" for who in "ra")
    admin_password, wrong_password = f"Adm1n {marker()}&x=1,}}", f"wrong-{marker()}"
    found[admin_password.split()[1].split("&")[0]] = "the admin's password"
    found[wrong_password] = "a wrong password"
    found[PASSWORD] = "the superuser's password"
    request_id = f"scan-{uuid.uuid4().hex}"

    async with httpx.AsyncClient(base_url=system.url("api"), timeout=10) as client:
        subprocess.run(
            [str(BIN / "lookout-api"), "create-superuser", root_email],
            env=system.env,
            check=True,
            capture_output=True,
        )
        root = {"Authorization": f"Bearer {await login(client, root_email, PASSWORD)}"}
        r = await client.post("/api/v1/tenants", json={"name": f"scan-{marker()}"}, headers=root)
        tenant_id = r.json()["id"]
        r = await client.post(
            "/api/v1/users",
            json={
                "email": admin_email,
                "password": admin_password,
                "role": "admin",
                "tenant_id": tenant_id,
            },
            headers=root,
        )
        assert r.status_code == 201, r.text

        # Logins: a wrong password, an unknown user, the right password.
        for email, password in ((admin_email, wrong_password), (f"x{admin_email}", wrong_password)):
            r = await client.post(
                "/api/v1/auth/token", data={"username": email, "password": password}
            )
            assert r.status_code == 401, r.text
        token = await login(client, admin_email, admin_password)
        found[token] = "an access token"
        found[token.rsplit(".", 1)[1]] = "an access token's signature"
        admin = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}

        # An API key, made and used; a wrong one tried; one sent as a request id.
        r = await client.post(
            "/api/v1/api-keys", json={"name": "scan", "role": "operator"}, headers=admin
        )
        assert r.status_code == 201, r.text
        key = r.json()["secret"]
        found[key[10:]] = "an API key (past its shown prefix)"
        r = await client.get("/api/v1/streams", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        wrong_key = f"lk_{marker()}{marker()}"
        found[wrong_key[3:]] = "a wrong API key"
        r = await client.get("/api/v1/streams", headers={"Authorization": f"Bearer {wrong_key}"})
        assert r.status_code == 401, r.text
        r = await client.get("/api/v1/streams", headers={**admin, "X-Request-ID": wrong_key})
        assert r.status_code == 200, r.text

        # Streams whose URLs carry credentials: created, probed and captured (refused fast:
        # nothing listens on the port), and one refused at once for a bad URL.
        closed = free_port()
        urls = []
        for url_secret, template in (
            (marker(), "rtsp://cam-user:{}@127.0.0.1:{}/live"),
            (marker(), "http://{}@127.0.0.1:{}/cam.m3u8"),
            (marker(), "rtmp://u:p@ss-{}@127.0.0.1:{}/app"),
        ):
            found[url_secret] = "a stream URL's credentials"
            urls.append(template.format(url_secret, closed))
        jobs = []
        for url in urls:
            r = await client.post(
                "/api/v1/streams", json={"name": "Scanned", "url": url}, headers=admin
            )
            assert r.status_code == 201, r.text
            r = await client.post(f"/api/v1/streams/{r.json()['id']}/snapshots", headers=admin)
            assert r.status_code == 202, r.text
            jobs.append(r.json()["job_id"])
        bad_url_secret = marker()
        found[bad_url_secret] = "a rejected stream URL's credentials"
        r = await client.post(
            "/api/v1/streams",
            json={"name": "Bad", "url": f"gopher://u:{bad_url_secret}@127.0.0.1/"},
            headers=admin,
        )
        assert r.status_code == 422, r.text

        async def failed(job_id: str) -> Any:
            job = (await client.get(f"/api/v1/jobs/{job_id}", headers=admin)).json()
            return job if job["status"] == "failed" else None

        for job_id in jobs:
            job = await wait_for(lambda job_id=job_id: failed(job_id), 60, f"job {job_id}")
            assert "refused" in job["error"].lower(), job

        # WebSockets: ?token=, the bearer subprotocol, an auth frame, and a bad token.
        notifier = f"ws://127.0.0.1:{system.url('notifier').rsplit(':', 1)[1]}/ws"
        async with websockets.connect(f"{notifier}?token={token}") as ws:
            await ws.send(json.dumps({"op": "auth", "token": token}))
            await ws.send(json.dumps({"op": "subscribe", "room": f"tenant:{tenant_id}"}))
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
            assert {f["op"] for f in frames} == {"authenticated", "subscribed"}, frames
        bearer = [Subprotocol("bearer"), Subprotocol(token)]
        async with websockets.connect(notifier, subprotocols=bearer) as ws:
            await ws.send(json.dumps({"op": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "pong"
        bad_token = f"eyJ{marker()}.eyJ{marker()}.{marker()}"
        found[bad_token.rsplit(".", 1)[1]] = "a bad token"
        async with websockets.connect(f"{notifier}?token={bad_token}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as refused:
                await asyncio.wait_for(ws.recv(), 10)
            assert refused.value.rcvd is not None and refused.value.rcvd.code == 1008

    await asyncio.sleep(1)  # the last lines and spans reach their files and the receiver

    logs = {service: system.log(service) for service in SERVICES}
    for service, text in logs.items():
        leaked = [what for secret, what in found.items() if secret in text]
        assert not leaked, f"{service}'s log shows {leaked}; see {system.logs}"
        lines = [json.loads(line) for line in text.splitlines()]
        assert any(line["level"] == "debug" for line in lines), f"{service} logged no DEBUG"
    spans = system.otlp.spans
    leaked_in_spans = [
        (span.service, span.name, what)
        for span in spans
        for secret, what in found.items()
        if secret in json.dumps([span.name, span.attributes])
    ]
    assert not leaked_in_spans, leaked_in_spans

    # The scan saw the work: the lines of our requests name their id and tenant, the
    # WebSocket handshakes and the refused captures are there, scrubbed.
    api_lines = [json.loads(line) for line in logs["api"].splitlines()]
    ours = [line for line in api_lines if line.get("request_id") == request_id]
    assert ours and all(line.get("tenant_id") == tenant_id for line in ours), ours
    assert "/ws?token=***" in logs["notifier"]
    assert all(job_id in logs["snapshot-worker"] for job_id in jobs)
