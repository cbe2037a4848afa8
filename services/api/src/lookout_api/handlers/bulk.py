"""Bulk create-or-update of up to 500 streams: all or nothing.

Every item is checked before anything is written (inputs first, then the targets of the
updates under a row lock); one bad item refuses the whole request with an error per bad
item. The writes, their audit entries and one event per change share one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lookout_shared.tokens import Principal

from lookout_api.domain import access, streams
from lookout_api.domain.errors import DomainError, ItemErrors, NotFound
from lookout_api.handlers.outbox_writes import commit, probe_commands, stream_changed
from lookout_api.handlers.quotas import ensure_stream_room
from lookout_api.handlers.streams import created_entry, updated_entry
from lookout_api.ports import Deps, Row, Session


@dataclass(frozen=True)
class BulkItem:
    """``stream_id`` None creates (name and url required); otherwise updates ``changes``."""

    stream_id: uuid.UUID | None
    changes: dict[str, Any]
    expected_version: int | None = None


@dataclass
class BulkResult:
    action: str  # created | updated | unchanged
    row: Row


@dataclass
class _Plan:
    errors: list[dict[str, object]] = field(default_factory=list)
    creates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def fail(self, index: int, where: str, exc: DomainError | str) -> None:
        detail = exc if isinstance(exc, str) else exc.detail
        status = 422 if isinstance(exc, str) else exc.status
        self.errors.append(
            {"loc": ["body", "items", index, where], "msg": detail, "status": status}
        )


def _field_of(detail: str) -> str:
    head = detail.split(":", 1)[0]
    return head if head in streams.EDITABLE else "item"


async def bulk_upsert(
    deps: Deps, principal: Principal, items: Sequence[BulkItem], tenant_id: uuid.UUID | None
) -> list[BulkResult]:
    access.require_role(principal, "operator")
    tenant = access.acting_tenant(principal, tenant_id)
    media_dir = deps.settings.media_dir
    plan = _Plan()
    seen: set[uuid.UUID] = set()
    for i, item in enumerate(items):
        if item.stream_id is None:
            missing = [k for k in ("name", "url") if k not in item.changes]
            if missing:
                plan.fail(i, missing[0], f"{missing[0]}: required to create a stream")
                continue
            try:
                values = streams.new_stream(
                    item.changes["name"],
                    item.changes["url"],
                    item.changes.get("tags", []),
                    item.changes.get("enabled", True),
                    media_dir,
                )
            except DomainError as exc:
                plan.fail(i, _field_of(exc.detail), exc)
                continue
            plan.creates.append((i, values))
        elif item.stream_id in seen:
            plan.fail(i, "id", "id: the same stream appears twice in one request")
        else:
            seen.add(item.stream_id)
    updates = [(i, it) for i, it in enumerate(items) if it.stream_id is not None]

    async with deps.db.transaction() as tx:
        if principal.is_superuser and not await tx.tenant_exists(tenant):
            raise NotFound("no such tenant")
        locked = await tx.lock_streams(list(seen), tenant)
        current = {r["id"]: r for r in locked}
        writes: list[tuple[int, Row, streams.Change]] = []
        for i, item in updates:
            assert item.stream_id is not None
            if item.stream_id not in seen:
                continue  # a duplicate, already reported
            before = current.get(item.stream_id)
            if before is None:
                plan.fail(i, "id", NotFound("no such stream"))
                continue
            if item.expected_version is not None and before["version"] != item.expected_version:
                plan.fail(
                    i,
                    "version",
                    f"version: the stream is at version {before['version']}, "
                    f"not {item.expected_version}",
                )
                continue
            try:
                change = streams.apply_changes(before, item.changes, media_dir)
            except DomainError as exc:
                plan.fail(i, _field_of(exc.detail), exc)
                continue
            writes.append((i, before, change))
        if plan.errors:
            plan.errors.sort(key=lambda e: e["loc"][2])  # type: ignore[index]
            raise ItemErrors(plan.errors)
        await ensure_stream_room(tx, deps.settings, tenant, len(plan.creates))
        results = await _write(tx, principal, tenant, plan, writes, len(items))
    await deps.cache.invalidate([tenant])
    return results


async def _write(
    tx: Session,
    principal: Principal,
    tenant: uuid.UUID,
    plan: _Plan,
    writes: list[tuple[int, Row, streams.Change]],
    count: int,
) -> list[BulkResult]:
    results: list[BulkResult | None] = [None] * count
    entries, envelopes = [], []
    to_probe: list[tuple[int, Row]] = []
    created = await tx.insert_streams(tenant, [v for _, v in plan.creates])
    for (i, values), row in zip(plan.creates, created, strict=True):
        results[i] = BulkResult("created", row)
        entries.append(created_entry(row))
        envelopes += stream_changed(row, created=True, probe=False)
        if values["enabled"]:
            to_probe.append((i, row))
    changing = [(i, before, change) for i, before, change in writes if change.changed]
    for i, before, _ in writes:
        results[i] = BulkResult("unchanged", before)
    updated = await tx.update_streams(
        [(before["id"], before["version"], change.values) for _, before, change in changing]
    )
    after_by_id = {r["id"]: r for r in updated}
    for i, before, change in changing:
        after = after_by_id[before["id"]]
        results[i] = BulkResult("updated", after)
        entries.append(updated_entry(before, after, change.changed))
        envelopes += stream_changed(after, created=False, probe=False)
        if change.probe:
            to_probe.append((i, after))
    # Events ahead of commands: the relay publishes in outbox order, and what users wait on
    # after a bulk write (counts, live updates) comes from the events, so the last
    # stream.created is not published behind the probe commands. They go to different queues
    # and a probe reads the committed row: nothing orders one by the other. The probes go in
    # commands of up to PROBE_BATCH streams (all of this tenant), in item order.
    to_probe.sort(key=lambda item: item[0])
    envelopes += probe_commands([row for _, row in to_probe])
    await commit(tx, principal, entries, envelopes)
    return [r for r in results if r is not None]
