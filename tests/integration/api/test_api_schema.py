"""schemathesis over /openapi.json, in-process against the ASGI app: no 5xx, and every
response matches the documented status codes, content types and schemas.

Half of the cases carry a NUL or another control character in one of their query or body
strings (schemathesis may generate them, but rarely within a small budget): text Postgres
cannot store must be refused as a 422, never reach it as a 500."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lookout_api.bootstrap import token_codec
from lookout_api.entrypoints.http import create_app
from lookout_api.settings import ApiSettings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 30  # per operation: the whole run stays under a minute
CONTROL = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f"]


def run_schemathesis(app_settings: ApiSettings, token: str) -> tuple[list[str], dict[str, int]]:
    """(failures, calls per operation)."""
    app = create_app(app_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls: dict[str, int] = {}
    try:
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            try:
                fuzz(operation, token, calls)()
            except Exception as exc:
                failures.append(f"{operation.label}: {exc}")
    finally:
        # schemathesis keeps an app's lifespan (and so its connections) alive for the whole
        # process unless told otherwise.
        asgi.shutdown_lifespans()
    return failures, calls


def fuzz(operation: Any, token: str, calls: dict[str, int]) -> Any:
    """A hypothesis test of one operation, counting its calls."""

    @given(case=with_control_characters(operation.as_strategy()))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(case: schemathesis.Case[Any]) -> None:
        calls[operation.label] = calls.get(operation.label, 0) + 1
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    return check


def with_control_characters(cases: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``cases``, half of them with a control character put into one of their strings."""

    @st.composite
    def strategy(draw: st.DrawFn) -> Any:
        case = draw(cases)
        holders = [
            (holder, key) for part in (case.query, case.body) for holder, key in _strings(part)
        ]
        inject: bool = draw(st.booleans())
        if not holders or not inject:
            return case
        holder, key = draw(st.sampled_from(holders))
        text = holder[key]
        at = draw(st.integers(0, len(text)))
        holder[key] = text[:at] + draw(st.sampled_from(CONTROL)) + text[at:]
        return case

    return strategy()


def _strings(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every string inside ``value`` (dicts and lists, any depth)."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    found: list[tuple[Any, Any]] = []
    for key, item in items:
        if isinstance(item, str):
            found.append((value, key))
        else:
            found.extend(_strings(item))
    return found


async def test_schemathesis_finds_no_5xx_and_no_schema_break(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO tenants (id, name) VALUES ($1, 'fuzz')", tenant)
    await db.execute(
        """INSERT INTO users (id, tenant_id, email, password_hash, role)
           VALUES ($1, $2, 'fuzz@example.com', 'x', 'admin')""",
        user,
        tenant,
    )
    await db.execute(
        """INSERT INTO streams (id, tenant_id, name, url, kind)
           VALUES ($1, $2, 'seed', 'rtsp://cam/x', 'rtsp')""",
        uuid.uuid4(),
        tenant,
    )
    app_settings = ApiSettings(
        storage_dir=str(tmp_path), redis_prefix=f"t-{uuid.uuid4().hex[:8]}:", login_ip_limit=5
    )
    token = token_codec(app_settings).issue(user, tenant, "admin", timedelta(minutes=10))
    failures, calls = await asyncio.to_thread(run_schemathesis, app_settings, token)
    assert failures == [], "\n\n".join(failures)
    # Every documented operation was exercised (the list, writes, bulk, keys, audit...).
    assert len(calls) >= 18 and all(n >= 1 for n in calls.values()), calls
    print(calls)
