"""A hot stream's reader child on its own (adapters/hot_reader.py), started as its worker starts it
(egress shim preloaded): what it costs in threads and memory, and how often it publishes."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookout_snapshot_worker.adapters.child import child_environment
from lookout_snapshot_worker.bootstrap import egress_shim
from lookout_snapshot_worker.domain.hot import FRAME_HEADER
from lookout_snapshot_worker.settings import WorkerSettings
from PIL import Image

from .hot_helpers import make_source

MIB = 1 << 20


@contextmanager
def reader(source: Path, mode: str, publish_interval: float) -> Iterator[subprocess.Popen[bytes]]:
    settings = WorkerSettings(allowed_networks="127.0.0.1/32")
    config = {
        "url": str(source), "kind": "file", "mode": mode, "io_timeout": 5,
        "stall_seconds": 4, "max_pixels": 7680 * 4320, "publish_interval": publish_interval,
    }  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "lookout_snapshot_worker.adapters.hot_reader"],
        env=child_environment(egress_shim(settings).environment(), 512 * MIB),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(config).encode() + b"\n")
    proc.stdin.close()
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def next_frame(proc: subprocess.Popen[bytes]) -> tuple[float, bytes]:
    assert proc.stdout is not None
    header = proc.stdout.read(FRAME_HEADER.size)
    assert len(header) == FRAME_HEADER.size, proc.stderr.read() if proc.stderr else b""
    captured_at, _, _, size = FRAME_HEADER.unpack(header)
    return captured_at, proc.stdout.read(size)


def private_memory(pid: int) -> int:
    """Heap and anonymous mappings: what each further reader adds (its libraries' pages
    are shared with the other readers)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Anonymous line")


def test_a_720p_reader_runs_on_one_thread_in_under_36_mib_of_its_own(tmp_path: Path) -> None:
    """PyAV's defaults gave the JPEG encoder slice threads with a context copy each and the
    pixel conversion a thread pool: five threads and ~43 MiB a reader, ~29 MiB now."""
    source = make_source(tmp_path, 1280, 720)
    with reader(source, "keyframes", 0) as proc:
        for _ in range(3):
            _, jpeg = next_frame(proc)
        assert Image.open(io.BytesIO(jpeg)).size == (1280, 720)
        threads = len(list(Path(f"/proc/{proc.pid}/task").iterdir()))
        memory = private_memory(proc.pid)
    assert threads == 1
    assert memory < 36 * MIB, f"{memory / MIB:.1f} MiB"


def test_a_reader_publishes_at_most_one_frame_per_interval_even_decoding_every_frame(
    tmp_path: Path,
) -> None:
    """A 15 fps source in mode "all" gave 15 JPEGs a second; one a second keeps frames
    under 2 s old at a fifteenth of the encoding."""
    source = make_source(tmp_path)
    with reader(source, "all", 1.0) as proc:
        stamps = [next_frame(proc)[0] for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(0.85 <= gap <= 1.5 for gap in gaps), gaps
    assert time.time() - stamps[-1] < 2


def test_a_file_that_starts_over_keeps_the_same_reader_publishing(tmp_path: Path) -> None:
    """Its timestamps start again at zero: the JPEG encoder refused the first frame of the
    second round ("Invalid argument") and the reader died at every end of the file."""
    source = make_source(tmp_path, seconds=2)
    with reader(source, "keyframes", 0) as proc:
        first = next_frame(proc)[0]
        while next_frame(proc)[0] - first < 3:  # well into the second round
            pass
        assert proc.poll() is None
