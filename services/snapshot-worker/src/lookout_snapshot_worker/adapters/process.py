"""Running ffmpeg/ffprobe as a child that can never outlive its wall-clock limit.

The child starts in a session (and process group) of its own, so a timeout or a cancelled
task kills the whole group with SIGKILL and reaps it; a worker killed outright takes the
child with it (see child.py, which also caps its memory): no orphan ffmpeg, whatever happened.
Arguments are a list handed to exec, never a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lookout_snapshot_worker.adapters.child import child_environment


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
