"""What one entity contributes to the counts of its tenant: a set of hash fields, each
counting 1. Counts are the sum of the contributions of every live entity, so applying an
event is "subtract the entity's old contribution, add its new one". The field rules live in
``lookout_shared.count_rules``: the api's SQL fallback counts with the same ones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lookout_shared import contracts
from lookout_shared.count_rules import Fields, job_fields, snapshot_fields, stream_fields
from lookout_shared.count_rules import resolution_class as resolution_class
from lookout_shared.envelope import Envelope
from pydantic import ValidationError

STREAM, SNAPSHOT, SNAPSHOT_JOB = "stream", "snapshot", "snapshot_job"


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
