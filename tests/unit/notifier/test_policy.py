"""Which origins may connect."""

from __future__ import annotations

from lookout_notifier.domain.policy import origin_allowed


def test_origin_allow_list() -> None:
    allowed = ["http://localhost:8000"]
    assert origin_allowed(None, allowed)
    assert origin_allowed("http://localhost:8000", allowed)
    assert not origin_allowed("http://evil.example", allowed)
    assert not origin_allowed("null", allowed)
