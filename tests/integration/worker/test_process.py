"""run_bounded against real processes: a timeout kills the whole group and reaps it."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from lookout_snapshot_worker.adapters.process import (
    PidfdChildWatcher,
    ProcessTimeout,
    run_bounded,
    watch_children_with_pidfd,
)
from lookout_snapshot_worker.bootstrap import egress_shim
from lookout_snapshot_worker.settings import WorkerSettings


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


async def group_gone(pgid: int) -> bool:
    """The whole group was sent SIGKILL; on a loaded machine a grandchild may need a few
    milliseconds to be scheduled and die, so allow it a short while."""
    for _ in range(100):
        if not group_members(pgid):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_finished_process_returns_its_output() -> None:
    done = await run_bounded(["sh", "-c", "printf out; printf err >&2; exit 3"], 5)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out", b"err")


async def test_timeout_kills_the_child_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # The shell leaves a grandchild behind: killing only the shell would orphan it.
    argv = ["sh", "-c", f"echo $$ > {pidfile}; sleep 30 & sleep 30"]
    with pytest.raises(ProcessTimeout):
        await run_bounded(argv, 0.5)
    pgid = int(pidfile.read_text())
    # Nothing of the group runs any more (an adopted grandchild may linger as a zombie
    # until init reaps it, which is no process at all).
    assert await group_gone(pgid)


async def test_cancellation_kills_the_group_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.create_task(
        run_bounded(["sh", "-c", f"echo $$ > {pidfile}; sleep 30 & sleep 30"], 30)
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await group_gone(int(pidfile.read_text()))


def running_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_a_cancel_while_the_child_starts_still_kills_its_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    marker = "30.0421"  # sleep's argument names this test's processes
    task = asyncio.create_task(
        run_bounded(["sh", "-c", f"echo $$ > {pidfile}; sleep {marker} & sleep {marker}"], 60)
    )
    for _ in range(3):  # the task forks the child and waits for its pipes to be connected
        await asyncio.sleep(0)
    # Blocking the loop keeps the task there while the shell starts its children.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not pidfile.exists():
        time.sleep(0.01)
    time.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)  # not the 30 s the orphaned sleeps would hold the pipes
    assert running_with(marker) == []


async def test_starting_a_media_child_does_not_stop_the_event_loop(tmp_path: Path) -> None:
    """A worker-sized heap: a fork (what a ``preexec_fn`` forces) copied its page tables
    with the event loop stopped for 30-50 ms per capture; vfork takes about a millisecond."""
    ballast = bytearray(300 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    env = egress_shim(WorkerSettings()).environment()
    worst: list[float] = []
    for _ in range(10):
        gaps: list[float] = []

        async def tick(gaps: list[float] = gaps) -> None:
            while True:
                began = time.perf_counter()
                await asyncio.sleep(0)
                gaps.append(time.perf_counter() - began)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        done = await run_bounded(["true"], 5, env, max_memory_bytes=256 << 20)
        ticker.cancel()
        assert done.returncode == 0
        worst.append(max(gaps))
    assert sorted(worst)[len(worst) // 2] < 0.015, worst
    del ballast


@pytest.fixture
def pidfd_watcher() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        before = asyncio.get_child_watcher()
    assert watch_children_with_pidfd()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(before)


@pytest.mark.usefixtures("pidfd_watcher")
def test_children_are_reaped_without_a_thread_each_on_any_event_loop(tmp_path: Path) -> None:
    """Python 3.11's default watcher starts a thread per child to wait for it; the pidfd
    watcher waits on the event loop, and (unlike 3.11's own) on whichever loop runs."""
    assert isinstance(asyncio.get_child_watcher(), PidfdChildWatcher)
    threads: list[int] = []

    async def captures() -> list[int]:
        async def one(code: int) -> int:
            done = await run_bounded(["sh", "-c", f"sleep 0.2; exit {code}"], 5)
            return done.returncode

        running = asyncio.gather(*(one(code) for code in range(8)))
        await asyncio.sleep(0.1)  # all eight children are running now
        threads.append(threading.active_count())
        # ThreadedChildWatcher names its threads asyncio-waitpid-N.
        assert not [t.name for t in threading.enumerate() if "waitpid" in t.name]
        return await running

    for _ in range(2):  # a second loop once the first is closed, as tests and restarts do
        before = threading.active_count()
        assert asyncio.run(captures()) == list(range(8))
        # Not one more thread (one of an earlier test's may end meanwhile: not equal).
        assert threads[-1] <= before
    with pytest.raises(ProcessTimeout):  # a timed-out child is still killed and reaped
        asyncio.run(run_bounded(["sleep", "30"], 0.3))
