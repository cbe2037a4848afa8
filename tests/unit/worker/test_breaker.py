"""The circuit breaker's rule, and frame rates read from ffprobe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lookout_snapshot_worker.domain.breaker import CLOSED, BreakerPolicy
from lookout_snapshot_worker.domain.streams import parse_rate

NOW = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = BreakerPolicy(
    threshold=3, base_delay=timedelta(seconds=10), max_delay=timedelta(seconds=35)
)


def test_it_opens_after_threshold_consecutive_failures() -> None:
    state = CLOSED
    for _ in range(2):
        previous, state = state, state.after_failure("refused", NOW, POLICY)
        assert not state.is_open(NOW) and not state.opened_by(previous)
    previous, state = state, state.after_failure("refused", NOW, POLICY)
    assert state.opened_by(previous)
    assert state.is_open(NOW + timedelta(seconds=9.9))
    assert not state.is_open(NOW + timedelta(seconds=10))  # half-open: one real attempt
    assert "3 consecutive failures" in state.refusal() and "refused" in state.refusal()


def test_each_reopening_doubles_the_delay_up_to_the_maximum() -> None:
    state, delays = CLOSED, []
    now = NOW
    for _ in range(3):
        state = state.after_failure("x", now, POLICY)
    for _ in range(4):
        assert state.open_until is not None
        delays.append((state.open_until - now).total_seconds())
        now = state.open_until  # the half-open attempt fails again
        state = state.after_failure("x", now, POLICY)
    assert delays == [10, 20, 35, 35]


@pytest.mark.parametrize(
    ("text", "fps"),
    [("30000/1001", 29.97), ("25/1", 25.0), ("15", 15.0), ("0/0", None), ("", None),
     (None, None), ("90000/1", None), ("abc", None)],
)  # fmt: skip
def test_frame_rates_are_parsed_and_absurd_ones_dropped(
    text: str | None, fps: float | None
) -> None:
    assert parse_rate(text) == fps
