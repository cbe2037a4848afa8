"""What a media child sets on itself between fork and exec: it dies with the worker, and its
private memory is capped.

- ``PR_SET_PDEATHSIG``: the kernel sends the child SIGKILL when the thread that forked it
  exits. asyncio forks from the event loop's thread, which lives as long as the worker, so a
  worker killed with SIGKILL (or crashing) takes its ffmpeg with it at once instead of
  leaving it to run until its own timeout. The signal is not sent when the parent died before
  ``prctl`` ran, so the child checks its parent afterwards and exits if it changed.
- ``RLIMIT_DATA``: the private writable memory (heap, anonymous mappings) the child may map.
  Not ``RLIMIT_AS``: ffmpeg maps ~350 MB of shared libraries and untouched malloc arena
  reservations before it decodes anything (an ordinary 1080p capture peaks at ~490 MB of
  address space but ~145 MB of data), so an address-space cap tight enough to matter would
  refuse ordinary captures. An allocation beyond the limit fails with ENOMEM and ffmpeg exits.

The function runs in the forked child before exec (``preexec_fn``). Python documents
``preexec_fn`` as unsafe with threads because the child could need a lock another thread held
at fork time; this one takes none: ``prctl`` is resolved before the fork, and it only makes
three system calls.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_prctl = ctypes.CDLL(None, use_errno=True).prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def child_setup(max_memory_bytes: int | None) -> Callable[[], None]:
    """A ``preexec_fn``: die with this process; at most ``max_memory_bytes`` of data (None:
    no cap)."""
    parent = os.getpid()
    limit = max_memory_bytes
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    if limit is not None and hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # only a privileged process may raise a hard limit

    def setup() -> None:
        if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)  # no guarantee of dying with the worker: do not run at all
        if os.getppid() != parent:  # the worker died before prctl: nobody will signal us
            os._exit(126)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return setup
