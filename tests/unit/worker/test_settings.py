"""The worker's settings: allowed networks as CSV or JSON, and the defaults."""

from __future__ import annotations

import pytest


def test_settings_accept_networks_as_csv_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from lookout_snapshot_worker.settings import WorkerSettings

    monkeypatch.setenv("LOOKOUT_ALLOWED_NETWORKS", "10.0.0.0/8, 127.0.0.1")
    assert [str(n) for n in WorkerSettings().allowed_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.setenv("LOOKOUT_ALLOWED_NETWORKS", '["fd00::/8"]')
    assert [str(n) for n in WorkerSettings().allowed_networks] == ["fd00::/8"]
    monkeypatch.delenv("LOOKOUT_ALLOWED_NETWORKS")
    settings = WorkerSettings()
    assert settings.allowed_networks == []
    assert (settings.worker_prefetch, settings.worker_concurrency, settings.capture_attempts) == (
        10, 8, 3,
    )  # fmt: skip
    assert (settings.probe_prefetch, settings.probe_concurrency) == (4, 2)
    assert settings.snapshots_per_stream == 100
    assert settings.service_name == "snapshot-worker"
