"""Operator commands: they call the same handlers as the REST API."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from lookout_shared.tokens import Principal

from lookout_api import bootstrap, handlers
from lookout_api.adapters import tenancy_db
from lookout_api.bootstrap import Deps
from lookout_api.domain import listing
from lookout_api.domain.errors import Conflict, DomainError
from lookout_api.settings import ApiSettings

DEMO_TENANT = "Demo"
DEMO_STREAM = "Demo camera"


async def create_superuser(settings: ApiSettings, email: str, password: str) -> int:
    async def work(deps: Deps) -> str:
        try:
            await handlers.create_user(deps, None, email, password, "superuser", None)
        except Conflict:
            return f"superuser {email} exists"
        return f"created superuser {email}"

    return await _run(settings, work)


async def seed_demo(settings: ApiSettings, video_url: str) -> int:
    """The demo tenant, its admin (LOOKOUT_DEMO_EMAIL / LOOKOUT_DEMO_PASSWORD) and a stream
    backed by a local test video. Running it again changes nothing."""
    email = os.environ.get("LOOKOUT_DEMO_EMAIL", "admin@example.com")
    password = os.environ.get("LOOKOUT_DEMO_PASSWORD", "lookout-demo-password")

    async def work(deps: Deps) -> str:
        async with deps.pool.acquire() as conn:
            tenant = await tenancy_db.tenant_by_name(conn, DEMO_TENANT)
        if tenant is None:
            tenant = await handlers.create_tenant(deps, None, DEMO_TENANT)
        async with deps.pool.acquire() as conn:
            admin = await tenancy_db.user_for_login(conn, email)
        if admin is None:
            admin = await handlers.create_user(deps, None, email, password, "admin", tenant["id"])
        principal = Principal(admin["id"], tenant["id"], "admin", expires_at=_far_future())
        found = await handlers.list_streams(deps, principal, _by_name(DEMO_STREAM))
        stream = next((s for s in found.rows if s["name"] == DEMO_STREAM), None)
        if stream is None:
            stream = await handlers.create_stream(
                deps,
                principal,
                name=DEMO_STREAM,
                url=video_url,
                tags=["demo"],
                enabled=True,
            )
        return f"tenant={tenant['id']} stream={stream['id']} email={email}"

    return await _run(settings, work)


async def _run(settings: ApiSettings, work: Callable[[Deps], Awaitable[str]]) -> int:
    """Run one command with Postgres and Redis (no broker: writes go to the outbox);
    a domain error is printed and exits 2."""
    deps = await bootstrap.build(settings, with_broker=False)
    try:
        print(await work(deps))
        return 0
    except DomainError as exc:
        print(f"error: {exc.detail}")
        return 2
    finally:
        await bootstrap.close(deps)


def _by_name(name: str) -> listing.StreamQuery:
    return listing.StreamQuery(
        filter=listing.StreamFilter(None, q=name), sort=listing.Sort("name", False), limit=500
    )


def _far_future() -> datetime:
    return datetime(9999, 1, 1, tzinfo=UTC)
