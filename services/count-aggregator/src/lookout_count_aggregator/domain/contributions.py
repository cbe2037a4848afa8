"""What one entity contributes to the counts of its tenant: a set of hash fields, each
counting 1. Counts are the sum of the contributions of every live entity, so applying an
event is "subtract the entity's old contribution, add its new one"."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from lookout_shared import contracts
from lookout_shared.envelope import Envelope
from pydantic import ValidationError

Fields = frozenset[str]

STREAM, SNAPSHOT, SNAPSHOT_JOB = "stream", "snapshot", "snapshot_job"
ENTITY_TYPES = (STREAM, SNAPSHOT, SNAPSHOT_JOB)


class UnusableEvent(Exception):
    """An event no retry can make countable (e.g. it names no tenant)."""


@dataclass(frozen=True)
class Contribution:
    """The state of one entity at one version, as far as the counts care."""

    entity_type: str
    entity_id: uuid.UUID
    tenant_id: uuid.UUID
    version: int
    fields: Fields

    @property
    def deleted(self) -> bool:
        return not self.fields


def resolution_class(height: int | None) -> str:
    if height is None:
        return "unknown"
    if height >= 2160:
        return "uhd"
    if height >= 1080:
        return "fhd"
    if height >= 720:
        return "hd"
    return "sd"


def stream_fields(status: str, kind: str, height: int | None, tags: Iterable[str]) -> Fields:
    return frozenset(
        {
            "streams_total",
            f"streams_status:{status}",
            f"streams_kind:{kind}",
            f"streams_resolution:{resolution_class(height)}",
            *(f"streams_tag:{tag}" for tag in tags),
        }
    )


def snapshot_fields() -> Fields:
    return frozenset({"snapshots_total"})


def job_fields(status: str) -> Fields:
    return frozenset({f"jobs_status:{status}"})


def entity_type_of(message_type: str) -> str:
    return message_type.partition(".")[0]


def fields_of(envelope: Envelope) -> Fields:
    """The contribution fields an event leaves its entity with (empty: deleted)."""
    try:
        payload = envelope.payload()
    except (KeyError, ValidationError) as exc:
        raise UnusableEvent(f"cannot read {envelope.type} payload: {exc}") from None
    match envelope.type, payload:
        case (("stream.created" | "stream.updated"), contracts.StreamState() as state):
            return stream_fields(state.status, state.kind, state.height, state.tags)
        case "stream.deleted", _:
            return frozenset()
        case "snapshot.created", _:
            return snapshot_fields()
        case "snapshot.deleted", _:
            return frozenset()
        case _, contracts.SnapshotJobState() as job if envelope.type.startswith("snapshot_job."):
            return job_fields(job.status)
    raise UnusableEvent(f"{envelope.type} is not a counted event")


def contribution_of(envelope: Envelope) -> Contribution:
    if envelope.tenant_id is None:
        raise UnusableEvent(f"{envelope.type} {envelope.entity_id} carries no tenant_id")
    return Contribution(
        entity_type=entity_type_of(envelope.type),
        entity_id=envelope.entity_id,
        tenant_id=envelope.tenant_id,
        version=envelope.entity_version,
        fields=fields_of(envelope),
    )
