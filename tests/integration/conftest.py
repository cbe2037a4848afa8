"""Integration tests build the worker's adapters (bootstrap.build_deps) in the test process;
the capture children they start are that worker's to stop, which a test does not do."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

CAPTURE_CHILD = b"lookout_snapshot_worker.adapters.capture_child"


def capture_children() -> list[int]:
    """Live capture children of this process (each leads a process group of its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            mine = int(stat[1]) == os.getpid() and stat[0] != "Z"
            if mine and CAPTURE_CHILD in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.fixture(autouse=True)
def stop_capture_children() -> Iterator[None]:
    """Each test's capture children end with it, as a worker's end with the worker."""
    yield
    for pid in capture_children():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
