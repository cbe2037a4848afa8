"""Running ffmpeg/ffprobe as a child that can never outlive its wall-clock limit.

The child starts in a session (and process group) of its own, so a timeout or a cancelled
task kills the whole group with SIGKILL and reaps it; a worker killed outright takes the
child with it (see child.py, which also caps its memory): no orphan ffmpeg, whatever happened.
Arguments are a list handed to exec, never a shell.

Children are waited for through a pidfd on the event loop (``watch_children_with_pidfd``),
not by Python 3.11's default watcher, which starts a thread per child to block in waitpid:
with a capture every few tens of milliseconds that thread start showed up in profiles as a
good part of the worker's own CPU per job. (Python 3.12 makes the pidfd watcher the default.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVarTuple

from lookout_snapshot_worker.adapters.child import child_environment

_Ts = TypeVarTuple("_Ts")


class PidfdChildWatcher(asyncio.AbstractChildWatcher):
    """Python 3.12's pidfd watcher: the child's pidfd becomes readable on the running loop
    when it exits, then it is reaped; no thread, and no loop of its own to attach (3.11's
    ``asyncio.PidfdChildWatcher`` binds one loop and stops working once it closes)."""

    def add_child_handler(
        self, pid: int, callback: Callable[[int, int, *_Ts], object], *args: *_Ts
    ) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

    def _reap(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        pidfd: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: the status is lost
            returncode = 255
        finally:
            os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> PidfdChildWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def watch_children_with_pidfd() -> bool:
    """Wait for this process's asyncio children with pidfds (Linux 5.3+); False where the
    platform has none, which keeps the default watcher."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel or a seccomp profile that refuses it
        return False
    with warnings.catch_warnings():  # the watcher API is deprecated from 3.12 (pidfd default)
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(PidfdChildWatcher())
    return True


class ProcessTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g}s")
        self.seconds = seconds


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_bounded(
    argv: Sequence[str],
    limit_seconds: float,
    env: Mapping[str, str] | None = None,
    *,
    max_memory_bytes: int | None = None,
) -> Completed:
    """Run ``argv`` to completion within ``limit_seconds``, or kill its group and raise.
    ``env`` replaces the child's environment (None: the worker's own); with the egress shim
    preloaded, the child dies with the worker and may map at most ``max_memory_bytes`` of
    data (None: no cap), see child.py."""
    spawning = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            env=child_environment(os.environ if env is None else env, max_memory_bytes),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        # Cancelled while the pipes were being set up: the child may already run, and
        # asyncio's own clean-up would kill only it, not its group. Finish, then kill all.
        with contextlib.suppress(Exception):
            await _kill_group(await spawning)
        raise
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        await _kill_group(proc)
        raise ProcessTimeout(limit_seconds) from None
    except BaseException:  # cancelled (shutdown) or anything else: the child dies with us
        await _kill_group(proc)
        raise
    assert proc.returncode is not None
    return Completed(proc.returncode, stdout, stderr)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # Before the child is reaped its pid (= its group id) cannot be reused, so this kills
    # exactly that group; ProcessLookupError means it is already gone.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    # Reap even if we are being cancelled, so no zombie or orphan is left behind.
    await asyncio.shield(proc.wait())
