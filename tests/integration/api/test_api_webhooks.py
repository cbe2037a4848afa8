"""Webhook configuration: the URL guard at creation, the secret shown once, tenant scope."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import asyncpg
import pytest
from lookout_shared.addresses import EgressPolicy
from lookout_shared.sealed import sealer_for
from lookout_shared.webhook_urls import RefusedUrl, parse_target

from tests.integration.api.conftest import Api

LOOPBACK_HOOK = "http://127.0.0.1:9/hook"  # never connected to: creation only resolves


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ],
)
async def test_internal_webhook_urls_are_refused_with_422(api: Api, url: str) -> None:
    # Literal addresses (and localhost, resolved locally) are judged without connecting.
    _, admin = await api.tenant_user("admin")
    r = await api.client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["stream.created"]}, headers=admin
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    r = await api.client.get("/api/v1/webhooks", headers=admin)
    assert r.json()["items"] == []


def test_metadata_address_is_refused_even_inside_allowed_networks() -> None:
    policy = EgressPolicy.build([ip_network("169.254.0.0/16")])
    target = parse_target("http://169.254.169.254/")
    assert policy.refusal(ip_address(target.host), target.port) is not None
    with pytest.raises(RefusedUrl):
        parse_target("gopher://example.com/")


@pytest.mark.api_settings(allowed_networks="127.0.0.0/8")
async def test_webhook_secret_is_shown_once_and_stored_sealed(api: Api, db: asyncpg.Pool) -> None:
    tenant, admin = await api.tenant_user("admin")
    body = {"url": LOOPBACK_HOOK, "events": ["stream.created", "stream.deleted"]}
    r = await api.client.post("/api/v1/webhooks", json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["tenant_id"] == tenant
    listed = (await api.client.get("/api/v1/webhooks", headers=admin)).json()["items"]
    assert [h["id"] for h in listed] == [created["id"]]
    assert "secret" not in listed[0]
    sealed = await db.fetchval("SELECT secret_sealed FROM webhooks WHERE id = $1", created["id"])
    assert created["secret"].encode() not in sealed
    assert sealer_for(api.settings).open(sealed) == created["secret"]


@pytest.mark.api_settings(allowed_networks="127.0.0.0/8")
async def test_webhooks_are_admin_only_and_tenant_scoped(api: Api) -> None:
    tenant, admin = await api.tenant_user("admin")
    _, operator = await api.tenant_user("operator", tenant)
    _, other_admin = await api.tenant_user("admin")
    body = {"url": LOOPBACK_HOOK, "events": ["stream.created"]}
    r = await api.client.post("/api/v1/webhooks", json=body, headers=operator)
    assert r.status_code == 403
    hook = (await api.client.post("/api/v1/webhooks", json=body, headers=admin)).json()
    assert (await api.client.get("/api/v1/webhooks", headers=other_admin)).json()["items"] == []
    r = await api.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=other_admin)
    assert r.status_code == 404
    r = await api.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=other_admin)
    assert r.status_code == 404
    r = await api.client.post(
        "/api/v1/webhooks", json={**body, "events": ["stream.exploded"]}, headers=admin
    )
    assert r.status_code == 422 and "stream.exploded" in r.json()["detail"]
    r = await api.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    assert r.status_code == 204


@pytest.mark.api_settings(allowed_networks="127.0.0.0/8")
async def test_test_fire_queues_a_delivery_and_replay_takes_only_finished_ones(
    api: Api, db: asyncpg.Pool
) -> None:
    _, admin = await api.tenant_user("admin")
    body = {"url": LOOPBACK_HOOK, "events": ["stream.created"]}
    hook = (await api.client.post("/api/v1/webhooks", json=body, headers=admin)).json()
    base = f"/api/v1/webhooks/{hook['id']}"
    r = await api.client.post(f"{base}/test", headers=admin)
    assert r.status_code == 202, r.text
    queued = r.json()
    assert (queued["status"], queued["event_type"]) == ("replay", "webhook.test")
    r = await api.client.post(f"{base}/deliveries/{queued['id']}/replay", headers=admin)
    assert r.status_code == 404  # still queued: nothing to replay yet
    await db.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE id = $1", queued["id"])
    failed = (await api.client.get(f"{base}/deliveries?status=failed", headers=admin)).json()
    assert [d["id"] for d in failed["items"]] == [queued["id"]]
    r = await api.client.post(f"{base}/deliveries/{queued['id']}/replay", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "replay"
    r = await api.client.get(f"{base}/deliveries?status=bogus", headers=admin)
    assert r.status_code == 422
