"""`make run` keeps going when one service dies: scripts/supervise.sh restarts it with backoff.

These run the real script with a small command standing in for a service (no servers needed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SUPERVISE = ROOT / "scripts/supervise.sh"


def _start(tmp_path: Path, command: str) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "service.log"
    env = {
        **os.environ,
        "LOOKOUT_RESTART_MIN_DELAY": "1",
        "LOOKOUT_RESTART_MAX_DELAY": "2",
        "LOOKOUT_RESTART_STABLE_SECONDS": "60",
    }
    proc = subprocess.Popen(
        ["bash", str(SUPERVISE), "crashy", str(log), "--", "bash", "-c", command],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, log


def _wait_for(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_make_run_used_to_stop_everything_when_one_service_exited(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc, log = _start(tmp_path, f"echo run >> {runs}; exit 3")
    try:
        assert _wait_for(lambda: runs.exists() and len(runs.read_text().split()) >= 3, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    text = log.read_text()
    assert "crashy exited with status 3" in text
    # The delay doubles up to the maximum: 1 s, then 2 s, then 2 s again.
    assert "restarting in 1s" in text and "restarting in 2s" in text
    assert "crashy exited with status 3" in stderr


def test_supervisor_stops_its_service_on_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    proc, _ = _start(tmp_path, f"echo $$ > {pid_file}; exec sleep 60")
    assert _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 5)
    service_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    assert proc.returncode == 0
    assert _wait_for(lambda: not Path(f"/proc/{service_pid}").exists(), 5)
    # No restart followed the stop.
    time.sleep(1.5)
    assert int(pid_file.read_text()) == service_pid


def test_make_run_starts_every_service_under_the_supervisor() -> None:
    run = (ROOT / "scripts/run.sh").read_text()
    assert 'scripts/supervise.sh "lookout-$service"' in run
    assert "wait -n" not in run
