"""What every media child (ffmpeg, ffprobe, a hot stream's reader) is held to besides the
egress policy: it dies with the worker, and its private memory is capped.

- It gets SIGKILL when the worker dies (``PR_SET_PDEATHSIG``), so a worker killed with
  SIGKILL (or crashing) takes its ffmpeg with it at once instead of leaving it to run until
  its own timeout; if the worker died before that was set, the child exits at once.
- ``RLIMIT_DATA``: the private writable memory (heap, anonymous mappings) the child may map.
  Not ``RLIMIT_AS``: ffmpeg maps ~350 MB of shared libraries and untouched malloc arena
  reservations before it decodes anything (an ordinary 1080p capture peaks at ~490 MB of
  address space but ~145 MB of data), so an address-space cap tight enough to matter would
  refuse ordinary captures. An allocation beyond the limit fails with ENOMEM and ffmpeg exits.

Both are set by the egress shim every child is started with (egress/lookout_egress.c), in
its constructor, from the two variables below; the worker's start-up check proves the shim
is loaded into each binary. Setting them in the child itself, not between fork and exec
(``preexec_fn``), lets Python start children with vfork: a ``preexec_fn`` forces a full fork
of the worker's address space, which stopped its event loop for 30-50 ms per capture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PARENT_VARIABLE = "LOOKOUT_CHILD_PARENT_PID"
MAX_DATA_VARIABLE = "LOOKOUT_CHILD_MAX_DATA_BYTES"


def child_environment(base: Mapping[str, str], max_memory_bytes: int | None) -> dict[str, str]:
    """``base`` plus: die with this process; at most ``max_memory_bytes`` of data (None: no
    cap)."""
    env = dict(base)
    env[PARENT_VARIABLE] = str(os.getpid())
    env.pop(MAX_DATA_VARIABLE, None)
    if max_memory_bytes is not None:
        env[MAX_DATA_VARIABLE] = str(max_memory_bytes)
    return env
