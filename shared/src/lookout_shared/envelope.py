"""The envelope every message travels in, and the registry of message types it may carry.

Consumers call :func:`parse_message` on receipt: it validates the envelope and the payload of
its type, and raises :class:`InvalidMessage` (with a reason fit for a dead-letter header)
for anything malformed, unknown or of a newer schema than this code understands.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lookout_shared import contracts


class InvalidMessage(Exception):
    """A message that no retry can make valid; it belongs in the dead-letter queue."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="idempotency key")
    type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    tenant_id: uuid.UUID | None
    entity_id: uuid.UUID
    entity_version: int = Field(ge=0)
    data: dict[str, Any] = Field(default_factory=dict)
    # The typed payload once validated (by parse_message on receipt, or a first payload()).
    # A slot, not a pydantic private attribute: those cost every envelope built a
    # post-init call and every read a __getattr__, which is more than a validation saves.
    # Not a field: equality, dumps and copies ignore it.
    __slots__ = ("_kept",)
    if TYPE_CHECKING:
        _kept: contracts.Payload

    def payload(self) -> contracts.Payload:
        """The typed payload of this message: the one :func:`parse_message` validated, so a
        consumer pays for one validation per message; validated here if none was yet."""
        try:
            return self._kept
        except AttributeError:
            return _keep(self, contracts.PAYLOADS[self.type].model_validate(self.data))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def make_envelope(
    message_type: str,
    payload: contracts.Payload,
    *,
    producer: str,
    tenant_id: uuid.UUID | None,
    entity_id: uuid.UUID,
    entity_version: int,
) -> Envelope:
    if not isinstance(payload, contracts.PAYLOADS[message_type]):
        raise TypeError(f"{message_type} does not carry {type(payload).__name__}")
    return Envelope(
        type=message_type,
        schema_version=contracts.SCHEMA_VERSION,
        producer=producer,
        tenant_id=tenant_id,
        entity_id=entity_id,
        entity_version=entity_version,
        data=payload.model_dump(mode="json"),
    )


def parse_message(body: bytes) -> Envelope:
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid envelope: {_summarise(exc)}") from None
    model = contracts.PAYLOADS.get(envelope.type)
    if model is None:
        raise InvalidMessage(f"unknown message type {envelope.type!r}")
    if envelope.schema_version > contracts.SCHEMA_VERSION:
        raise InvalidMessage(
            f"schema_version {envelope.schema_version} is newer than {contracts.SCHEMA_VERSION}"
        )
    try:
        _keep(envelope, model.model_validate(envelope.data))
    except ValidationError as exc:
        raise InvalidMessage(f"invalid {envelope.type} data: {_summarise(exc)}") from None
    return envelope


def _keep(envelope: Envelope, payload: contracts.Payload) -> contracts.Payload:
    object.__setattr__(envelope, "_kept", payload)  # the model is frozen; the slot is not
    return payload


def _summarise(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)
