"""Readiness with hysteresis: one failed check keeps a process ready, a sustained failure
does not, and a dependency that never answered is not ready at all."""

from __future__ import annotations

import asyncio

from lookout_shared.http import Readiness, readiness_checks


class Dependency:
    def __init__(self) -> None:
        self.up = True
        self.slow = False

    async def check(self) -> None:
        if self.slow:
            await asyncio.sleep(1)
        if not self.up:
            raise ConnectionError("refused")


async def test_one_failed_check_keeps_ready_three_in_a_row_do_not() -> None:
    dep = Dependency()
    readiness = Readiness(timeout=0.05, failures=3)
    checks = {"redis": dep.check}
    assert await readiness.probe(checks) == {"redis": "ok"}
    dep.slow = True  # slower than the timeout: a failure too
    assert await readiness.probe(checks) == {"redis": "failing"}
    dep.slow = False
    assert await readiness.probe(checks) == {"redis": "ok"}  # the count starts over
    dep.up = False
    states = [(await readiness.probe(checks))["redis"] for _ in range(4)]
    assert states == ["failing", "failing", "unavailable", "unavailable"]
    dep.up = True
    assert await readiness.probe(checks) == {"redis": "ok"}


async def test_a_dependency_that_never_answered_is_unavailable_at_once() -> None:
    dep = Dependency()
    dep.up = False
    readiness = Readiness(timeout=0.05, failures=3)
    assert await readiness.probe({"postgres": dep.check}) == {"postgres": "unavailable"}


class FakeBroker:
    def __init__(self, connected: bool) -> None:
        self.is_connected = connected


async def test_every_service_reports_the_broker_as_rabbitmq() -> None:
    broker: FakeBroker | None = None
    checks = readiness_checks(redis=Dependency().check, rabbitmq=lambda: broker)
    assert list(checks) == ["redis", "rabbitmq"]
    readiness = Readiness(timeout=0.05)
    # Before the broker is built, and while it is disconnected: not ready.
    assert await readiness.probe(checks) == {"redis": "ok", "rabbitmq": "unavailable"}
    broker = FakeBroker(connected=True)
    assert await readiness.probe(checks) == {"redis": "ok", "rabbitmq": "ok"}
    broker.is_connected = False
    assert await readiness.probe(checks) == {"redis": "ok", "rabbitmq": "failing"}
