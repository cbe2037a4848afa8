"""The worker's side of the warm capture children (capture_child.py): a pool of them, each
taking one capture at a time.

The worker starts as many as its capture slots before it takes commands (``warm``), and a
capture that finds none idle starts one, so there are never more than the captures running
at once; a child is kept for the next capture while it lives. Each starts in a process
group of its own with the egress shim preloaded and the memory cap (adapters/child.py): it
dies with the worker. A capture past its time limit has its child's group killed and
reaped, and the next capture starts a fresh child; a child that dies (the shim's refusal,
the memory cap, a crash) answers with its stderr and exit code, which the worker classifies
as it did an ffmpeg run's. A child is replaced after ``CAPTURES_PER_CHILD`` captures, so a
slow leak in FFmpeg's libraries or the interpreter's heap can only add up so far (one
capture in that many pays a child's start, ~0.2 s). ``close`` kills every child.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lookout_snapshot_worker.adapters.child import child_environment
from lookout_snapshot_worker.adapters.process import ProcessTimeout
from lookout_snapshot_worker.domain.capture import ANSWER_HEADER

CHILD_COMMAND = (sys.executable, "-m", "lookout_snapshot_worker.adapters.capture_child")
# A child's stderr kept for the failure it may explain (the tail is what says why).
STDERR_KEPT = 64 * 1024
# A child loads Python and FFmpeg's libraries within this (~0.1-0.3 s of CPU).
START_SECONDS = 30.0
# A child that died has closed its stderr; this bounds the wait for its last bytes.
STDERR_GRACE = 2.0
CAPTURES_PER_CHILD = 1000


@dataclass(frozen=True)
class Answer:
    """A capture's outcome: the JPEG (``ok``), or the failure's text; ``exit_code`` is set
    when the child died, and the text is then its stderr."""

    ok: bool
    payload: bytes
    exit_code: int | None = None

    @property
    def text(self) -> str:
        return "" if self.ok else self.payload.decode(errors="replace")


class CaptureChild:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.captures = 0
        self._stderr = bytearray()
        assert proc.stderr is not None
        self._drain = asyncio.ensure_future(self._keep_stderr(proc.stderr))

    @classmethod
    async def start(cls, command: Sequence[str], environment: Mapping[str, str]) -> CaptureChild:
        spawning = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *command, env=dict(environment), start_new_session=True,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        )  # fmt: skip
        try:
            child = cls(await asyncio.shield(spawning))
        except asyncio.CancelledError:
            # Cancelled while the pipes were set up: the child may already run (process.py).
            with contextlib.suppress(Exception):
                await cls(await spawning).kill()
            raise
        try:
            await child._hello()
        except BaseException:
            await child.kill()
            raise
        return child

    async def _hello(self) -> None:
        """Wait until the child has loaded FFmpeg's libraries and says it is ready (an empty
        answer), so that is no capture's time; raises ProcessTimeout past START_SECONDS. A
        child that died starting is left for its first capture to report."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(START_SECONDS):
                await self.proc.stdout.readexactly(ANSWER_HEADER.size)
        except asyncio.IncompleteReadError:
            pass
        except TimeoutError:
            raise ProcessTimeout(START_SECONDS) from None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def _keep_stderr(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(4096):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEPT]

    async def ask(self, request: Mapping[str, Any], limit_seconds: float) -> Answer:
        """The answer to one request; raises ProcessTimeout (the child killed) past ``limit_seconds``."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(limit_seconds):
                try:
                    self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                    await self.proc.stdin.drain()
                    ok, size = ANSWER_HEADER.unpack(
                        await self.proc.stdout.readexactly(ANSWER_HEADER.size)
                    )
                    payload = await self.proc.stdout.readexactly(size)
                    self._stderr.clear()  # what it prints from now on is the next capture's
                    return Answer(ok, payload)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return await self._death()
        except TimeoutError:
            await self.kill()
            raise ProcessTimeout(limit_seconds) from None

    async def _death(self) -> Answer:
        code = await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drain), STDERR_GRACE)
        return Answer(False, bytes(self._stderr), exit_code=code)

    async def kill(self) -> None:
        # Until the child is reaped its pid (= its group id) cannot be reused, so this kills
        # exactly its group; ProcessLookupError means it is already gone.
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.shield(self.proc.wait())  # reaped even when cancelled: no zombie
        self._drain.cancel()


class CapturePool:
    def __init__(
        self,
        environment: Mapping[str, str],
        max_memory_bytes: int | None,
        command: Sequence[str] = CHILD_COMMAND,
        captures_per_child: int = CAPTURES_PER_CHILD,
    ) -> None:
        self._environment = child_environment(environment, max_memory_bytes)
        self._command = tuple(command)
        self._captures_per_child = captures_per_child
        self._idle: list[CaptureChild] = []
        self._busy: set[CaptureChild] = set()

    async def capture(self, request: Mapping[str, Any], limit_seconds: float) -> Answer:
        """Raises OSError when no child can be started, ProcessTimeout past ``limit_seconds``."""
        child = self._idle.pop() if self._idle else None
        if child is None or not child.alive:
            if child is not None:
                await child.kill()
            child = await CaptureChild.start(self._command, self._environment)
        self._busy.add(child)
        try:
            answer = await child.ask(request, limit_seconds)
        except BaseException:  # timed out, or cancelled mid-capture: its state is unknown
            await child.kill()
            raise
        finally:
            self._busy.discard(child)
        child.captures += 1
        if child.alive and answer.exit_code is None:
            if child.captures < self._captures_per_child:
                self._idle.append(child)
            else:
                await child.kill()  # served its share: the next capture starts a fresh one
        return answer

    async def warm(self, count: int) -> None:
        """Start children until ``count`` are idle (the worker's start: its first captures
        find them ready)."""
        while len(self._idle) < count:
            self._idle.append(await CaptureChild.start(self._command, self._environment))

    def pids(self) -> list[int]:
        return [child.proc.pid for child in (*self._idle, *self._busy)]

    async def close(self) -> None:
        children = [*self._idle, *self._busy]
        self._idle.clear()
        await asyncio.gather(*(child.kill() for child in children))
