"""A dead letter's headers, as the ``dlq`` commands read and replay them."""

from __future__ import annotations

from lookout_shared.queues import (
    DEATH_HEADERS,
    death_reason,
    death_source,
    replayed_headers,
    replays,
)

BY_RABBITMQ = {
    "x-death": [{"queue": "snapshot.capture", "reason": "delivery_limit", "count": 3}],
    "x-first-death-reason": "delivery_limit",
    "x-delivery-count": 3,
    "traceparent": "00-abc-def-01",
}
BY_CONSUMER = {"x-lookout-reason": "bad payload", "x-lookout-queue": "stream.probe"}


def test_reason_and_source_come_from_the_consumer_else_from_rabbitmq() -> None:
    assert (death_reason(BY_CONSUMER), death_source(BY_CONSUMER)) == ("bad payload", "stream.probe")
    assert death_reason(BY_RABBITMQ) == "rabbitmq: delivery_limit"
    assert death_source(BY_RABBITMQ) == "snapshot.capture"
    assert (death_reason({}), death_source({}), replays({})) == ("unknown", "", 0)
    # Headers are the sender's: a malformed x-death or replay count reads as unknown.
    assert death_reason({"x-death": "nonsense", "x-lookout-replayed": "x"}) == "unknown"
    assert replays({"x-lookout-replayed": "x"}) == 0
    assert death_reason({"x-lookout-reason": b"bytes \xff"}) == "bytes \ufffd"


def test_a_replayed_letter_drops_its_death_bookkeeping_and_counts_the_replay() -> None:
    once = replayed_headers({**BY_RABBITMQ, **BY_CONSUMER})
    assert once == {"traceparent": "00-abc-def-01", "x-lookout-replayed": 1}
    assert not set(once) & set(DEATH_HEADERS)
    assert replayed_headers(once)["x-lookout-replayed"] == 2
