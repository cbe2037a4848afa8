"""Debounced counts.changed announcements."""

from __future__ import annotations

import uuid

import pytest
from aio_pika.exceptions import DeliveryError
from lookout_count_aggregator.adapters.counts_publisher import CountsPublisher
from lookout_count_aggregator.adapters.memory import RecordingPublisher
from lookout_count_aggregator.domain.debounce import Debouncer
from lookout_shared.contracts import CountsChanged
from pamqp.commands import Basic


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_change_is_due_at_once_then_at_most_once_per_interval() -> None:
    d = Debouncer(0.25)
    d.add("a", {"x": 1})
    assert d.due(10.0) == [("a", {"x": 1})]
    d.add("a", {"x": 2})
    d.add("a", {"y": 5})
    assert d.due(10.1) == []
    assert d.wait_time(10.1) == pytest.approx(0.15)
    assert d.due(10.25) == [("a", {"x": 2, "y": 5})]
    assert d.wait_time(10.25) is None


def test_scopes_are_debounced_independently() -> None:
    d = Debouncer(0.25)
    d.add("a", {"x": 1})
    assert d.due(0.0) == [("a", {"x": 1})]
    d.add("a", {"x": 2})
    d.add("b", {"x": 7})
    assert d.due(0.1) == [("b", {"x": 7})]
    assert d.due(0.3) == [("a", {"x": 2})]


def test_only_values_that_differ_from_the_last_announcement_are_sent() -> None:
    d = Debouncer(0.25)
    d.add("a", {"x": 1, "y": 1})
    d.due(0.0)
    d.add("a", {"x": 2})
    d.add("a", {"x": 1, "y": 2})  # x went back to what was announced
    assert d.due(1.0) == [("a", {"y": 2})]


def test_restored_batch_is_sent_again_with_newer_values_winning() -> None:
    d = Debouncer(0.25)
    d.add("a", {"x": 1, "y": 1})
    batch = d.due(0.0)
    d.add("a", {"y": 3})
    d.restore(*batch[0])
    assert d.due(1.0) == [("a", {"x": 1, "y": 3})]


async def test_publisher_sends_counts_changed_for_the_tenant() -> None:
    tenant = uuid.uuid4()
    sent = RecordingPublisher()
    clock = Clock()
    publisher = CountsPublisher(sent, "count-aggregator", 0.25, clock=clock)
    publisher.record(str(tenant), {"snapshots_total": 3})
    assert await publisher.publish_due()
    publisher.record(str(tenant), {"snapshots_total": 4})
    assert await publisher.publish_due()  # not due yet: nothing sent
    clock.now += 0.25
    assert await publisher.publish_due()
    assert [e.type for e in sent.published] == ["counts.changed", "counts.changed"]
    first, second = sent.published
    assert (first.tenant_id, first.entity_id) == (tenant, tenant)
    assert first.payload() == CountsChanged(scope=str(tenant), changes={"snapshots_total": 3})
    assert second.payload() == CountsChanged(scope=str(tenant), changes={"snapshots_total": 4})
    assert second.entity_version > first.entity_version


async def test_unroutable_counts_changed_is_dropped_quietly() -> None:
    publisher = CountsPublisher(
        RecordingPublisher(error=DeliveryError(None, Basic.Return(312, "NO_ROUTE"))),
        "count-aggregator",
        0.25,
    )
    publisher.record(str(uuid.uuid4()), {"snapshots_total": 1})
    assert await publisher.publish_due()


async def test_broker_failure_keeps_the_batch_for_a_retry() -> None:
    tenant = str(uuid.uuid4())
    sent = RecordingPublisher(error=ConnectionError("broker gone"))
    clock = Clock()
    publisher = CountsPublisher(sent, "count-aggregator", 0.25, clock=clock)
    publisher.record(tenant, {"snapshots_total": 1})
    assert not await publisher.publish_due()
    sent.error = None
    clock.now += 1
    assert await publisher.publish_due()
    assert [e.payload() for e in sent.published] == [
        CountsChanged(scope=tenant, changes={"snapshots_total": 1})
    ]
