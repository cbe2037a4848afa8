"""Webhook rules without I/O: the delivered body, its id and signature, and the circuit.

The signature follows the spirit of the Standard Webhooks spec: ``Webhook-Signature:
v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the hook's secret, ``Webhook-Timestamp``
in Unix seconds (receivers refuse one older than five minutes: replays), ``Webhook-Id``
the same on every retry of one event to one hook (receivers deduplicate on it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field

from lookout_shared.envelope import Envelope

REPLAY_WINDOW_SECONDS = 300


def body_of(envelope: Envelope) -> str:
    """The JSON delivered for an event. ``data`` goes through the event's contract model
    (extra fields forbidden), so only contract fields leave: no stream URL, credentials or
    failure detail is in any event contract."""
    return json.dumps(
        {
            "id": str(envelope.id),
            "type": envelope.type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "tenant_id": str(envelope.tenant_id),
            "entity_id": str(envelope.entity_id),
            "entity_version": envelope.entity_version,
            "data": envelope.payload().model_dump(mode="json"),
        },
        separators=(",", ":"),
    )


def delivery_id(event_id: uuid.UUID, webhook_id: uuid.UUID) -> str:
    return f"{event_id}:{webhook_id}"


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def headers(
    secret: str, event_id: uuid.UUID, webhook_id: uuid.UUID, now: int, body: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Webhook-Id": delivery_id(event_id, webhook_id),
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": signature(secret, now, body),
        "User-Agent": "lookout-webhooks/1",
    }


@dataclass
class Circuit:
    """One endpoint's circuit: after ``threshold`` consecutive failures it opens for
    ``open_seconds``; deliveries to it wait until then, and the next one probes it."""

    threshold: int
    open_seconds: float
    failures: int = 0
    open_until: float = field(default=0.0)

    def wait_seconds(self, now: float) -> float:
        return max(0.0, self.open_until - now)

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + self.open_seconds

    def succeeded(self) -> None:
        self.failures, self.open_until = 0, 0.0


@dataclass(frozen=True)
class Hook:
    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    secret_sealed: bytes


@dataclass(frozen=True)
class Pending:
    """A delivery row claimed for sending (a replay or a test-fire)."""

    id: uuid.UUID
    hook: Hook
    event_id: uuid.UUID
    body: str


@dataclass(frozen=True)
class Outcome:
    attempts: int
    error: str | None  # None: delivered
