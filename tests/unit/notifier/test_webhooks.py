"""Webhook rules without I/O: the signature, the delivered body, the endpoint circuit."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from lookout_notifier.domain.webhooks import Circuit, body_of, headers, signature
from lookout_shared.contracts import StreamState
from lookout_shared.envelope import make_envelope


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, "{}") == f"v1={expected}"


def test_webhook_id_is_the_same_for_every_retry_of_one_event_to_one_hook() -> None:
    event, hook = uuid.uuid4(), uuid.uuid4()
    first = headers("k", event, hook, 1, "{}")
    again = headers("k", event, hook, 99, "{}")
    assert first["Webhook-Id"] == again["Webhook-Id"] == f"{event}:{hook}"
    assert first["Webhook-Signature"] != again["Webhook-Signature"]


def test_body_carries_only_contract_fields_of_the_event() -> None:
    tenant, stream = uuid.uuid4(), uuid.uuid4()
    state = StreamState(name="door", kind="rtsp", status="online", enabled=True)
    event = make_envelope(
        "stream.updated",
        state,
        producer="api",
        tenant_id=tenant,
        entity_id=stream,
        entity_version=2,
    )
    body = json.loads(body_of(event))
    assert body["tenant_id"] == str(tenant) and body["entity_id"] == str(stream)
    assert set(body) == {
        "id",
        "type",
        "occurred_at",
        "tenant_id",
        "entity_id",
        "entity_version",
        "data",
    }
    assert "url" not in body["data"] and "producer" not in body


def test_circuit_opens_after_threshold_failures_and_closes_on_success() -> None:
    circuit = Circuit(threshold=3, open_seconds=60)
    circuit.failed(0)
    circuit.failed(1)
    assert circuit.wait_seconds(1) == 0
    circuit.failed(2)
    assert circuit.wait_seconds(2) == 60
    assert circuit.wait_seconds(70) == 0  # half open: the next delivery probes
    circuit.failed(70)  # the probe failed: open again at once
    assert circuit.wait_seconds(70) == 60
    circuit.succeeded()
    assert circuit.wait_seconds(70) == 0 and circuit.failures == 0


def test_sealed_secret_opens_only_with_the_same_key() -> None:
    from lookout_shared.sealed import InvalidToken, Sealer

    sealed = Sealer("k" * 40).seal("whsec_abc")
    assert b"whsec_abc" not in sealed
    assert Sealer("k" * 40).open(sealed) == "whsec_abc"
    with pytest.raises(InvalidToken):
        Sealer("j" * 40).open(sealed)
