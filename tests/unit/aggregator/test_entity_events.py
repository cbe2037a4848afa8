"""The batch handler: many events, one store call; the failures of a few stay theirs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from lookout_count_aggregator.adapters.memory import InMemoryCountStore, RecordingSink
from lookout_count_aggregator.domain.contributions import Contribution
from lookout_count_aggregator.handlers.entity_events import apply_entity_events
from lookout_count_aggregator.ports import Applied
from lookout_shared import contracts
from lookout_shared.broker import PermanentFailure
from lookout_shared.envelope import Envelope, make_envelope

TENANT = uuid.uuid4()


def stream(sid: uuid.UUID, version: int, status: contracts.StreamStatus = "pending") -> Envelope:
    state = contracts.StreamState(name="cam", kind="rtsp", status=status, enabled=True)
    return make_envelope(
        "stream.created" if version == 1 else "stream.updated",
        state,
        producer="tests",
        tenant_id=TENANT,
        entity_id=sid,
        entity_version=version,
    )


class ScriptErrorStore(InMemoryCountStore):
    """A store whose script fails on one event (as a Redis script error would), after
    applying the events before it."""

    def __init__(self, bad: uuid.UUID) -> None:
        super().__init__()
        self.bad = bad

    async def apply_many(self, events: Sequence[tuple[uuid.UUID, Contribution]]) -> Applied:
        for i, (event_id, _) in enumerate(events):
            if event_id == self.bad:
                await super().apply_many(events[:i])
                raise RuntimeError("script error")
        return await super().apply_many(events)


async def test_a_batch_is_one_store_call_applied_in_order() -> None:
    store, sink = InMemoryCountStore(), RecordingSink()
    s1, s2 = uuid.uuid4(), uuid.uuid4()
    batch = [stream(s1, 1), stream(s2, 1), stream(s1, 2, "online"), stream(s1, 1)]
    results = await apply_entity_events(batch, store, sink)
    assert results == [None] * 4
    assert store.calls == 1
    assert store.tenants[TENANT]["streams_total"] == 2
    assert store.tenants[TENANT]["streams_status:online"] == 1
    assert store.tenants[TENANT]["streams_status:pending"] == 1
    # One announcement per tenant and batch, with the batch's final values.
    assert sink.records == [
        (
            str(TENANT),
            {
                "streams_total": 2,
                "streams_status:pending": 1,
                "streams_status:online": 1,
                "streams_kind:rtsp": 2,
                "streams_resolution:unknown": 2,
            },
        )
    ]


async def test_versions_out_of_order_in_one_batch_end_as_the_newest() -> None:
    store, sink = InMemoryCountStore(), RecordingSink()
    sid = uuid.uuid4()
    await apply_entity_events([stream(sid, 2, "online"), stream(sid, 1)], store, sink)
    assert store.tenants[TENANT]["streams_status:online"] == 1
    assert "streams_status:pending" not in store.tenants[TENANT]


async def test_an_unusable_event_mid_batch_fails_alone() -> None:
    store, sink = InMemoryCountStore(), RecordingSink()
    orphan = stream(uuid.uuid4(), 1).model_copy(update={"tenant_id": None})
    batch = [stream(uuid.uuid4(), 1), orphan, stream(uuid.uuid4(), 1)]
    results = await apply_entity_events(batch, store, sink)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], PermanentFailure)
    assert "no tenant_id" in str(results[1])
    assert store.calls == 1
    assert store.tenants[TENANT]["streams_total"] == 2


async def test_a_store_error_mid_batch_is_retried_for_that_event_only() -> None:
    bad = stream(uuid.uuid4(), 1)
    store, sink = ScriptErrorStore(bad.id), RecordingSink()
    batch = [stream(uuid.uuid4(), 1), bad, stream(uuid.uuid4(), 1)]
    results = await apply_entity_events(batch, store, sink)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], RuntimeError)
    assert not isinstance(results[1], PermanentFailure)  # retried, not dead-lettered
    # The first event was applied by the failed batch call, then met as a duplicate.
    assert store.tenants[TENANT]["streams_total"] == 2
