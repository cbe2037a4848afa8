"""Tenant quota rules."""

from __future__ import annotations

import pytest
from lookout_api.domain import quotas
from lookout_api.domain.errors import Forbidden, TooManyRequests


def test_a_tenants_own_value_wins_over_the_default() -> None:
    q = quotas.effective(None, None, 100, 60)
    assert (q.max_streams, q.snapshot_requests_per_minute) == (100, 60)
    assert q.max_streams_is_default and q.snapshot_rate_is_default
    q = quotas.effective(5, 0, 100, 60)
    assert (q.max_streams, q.snapshot_requests_per_minute) == (5, 0)
    assert not q.max_streams_is_default and not q.snapshot_rate_is_default


def test_streams_up_to_the_limit_pass() -> None:
    quotas.check_streams(used=0, adding=3, limit=3)
    quotas.check_streams(used=2, adding=1, limit=3)
    quotas.check_streams(
        used=5, adding=0, limit=3
    )  # nothing new: a lowered limit stops only creates


@pytest.mark.parametrize(
    ("used", "adding", "limit", "room"), [(3, 1, 3, 0), (1, 3, 3, 2), (9, 1, 3, 0)]
)
def test_streams_past_the_limit_are_forbidden(
    used: int, adding: int, limit: int, room: int
) -> None:
    with pytest.raises(quotas.QuotaExceeded) as exc:
        quotas.check_streams(used, adding, limit)
    assert isinstance(exc.value, Forbidden) and exc.value.status == 403
    assert f"{room} more can be created, not {adding}" in exc.value.detail


def test_the_snapshot_rate_counts_the_request_itself() -> None:
    quotas.check_snapshot_rate(count=10, limit=10, retry_after=5)
    with pytest.raises(TooManyRequests) as exc:
        quotas.check_snapshot_rate(count=11, limit=10, retry_after=5)
    assert exc.value.retry_after == 5 and "retry in 5 s" in exc.value.detail
    with pytest.raises(TooManyRequests):
        quotas.check_snapshot_rate(count=1, limit=0, retry_after=60)  # 0: no snapshots at all
