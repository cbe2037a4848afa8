"""Holding every connection FFmpeg's libraries open to the egress policy.

FFmpeg's libraries do the media work in three kinds of child process: ffprobe (probes), the
warm capture children (cold captures, capture_child.py) and the hot streams' readers
(hot_reader.py), the last two through PyAV. "ffmpeg" below stands for any of them.

The URL check (adapters/guard.py) sees only a stream's own URL. ffmpeg then connects to
places the worker never sees: segments and variants listed in an HLS playlist, where an
HTTP redirect or an RTSP DESCRIBE redirect points, and the address a name resolves to the
second time (DNS rebinding). So the decision is also made inside ffmpeg, on the final socket
address: a small shared object (services/snapshot-worker/egress/lookout_egress.c) is
preloaded into each such child (LD_PRELOAD) and wraps connect(), sendto(), sendmsg() and
sendmmsg(). It judges each IPv4/IPv6 destination with the rules of ``EgressPolicy``, the very
list the URL check uses, handed over in LOOKOUT_EGRESS_POLICY; on a refusal it prints
"lookout-egress: refused: address not allowed: ADDRESS port PORT" and ends the process, so
the run fails at once (domain/failures.py makes that a permanent failure).

Why this and not the alternatives: it holds for every protocol the worker allows (http,
https, hls, rtsp, rtsps, rtmp) and for any way ffmpeg picks a destination. A checking HTTP
proxy would not cover RTSP or RTMP (they ignore -http_proxy), and pinning the resolved
address covers neither playlists nor redirects.

Limits, and what covers them:
- LD_PRELOAD works only on a dynamically linked binary that is run directly: a static or
  setuid ffprobe or Python, or a wrapper script that drops the variable, runs unguarded.
  ``verify`` runs each configured binary, and a capture child, once at start against a
  refusing policy and a loopback listener of its own; the worker does not start unless each
  refused and nothing connected.
- The shim file must exist: ``load`` refuses to build the worker without it (fail closed),
  and a missing or malformed policy in the child refuses every destination.
- Name lookups run inside the C library, which does not pass through the wrappers; the
  system's name servers (``system_resolvers``) are allowed on port 53 in case a resolver
  does, which also means the URL check lets those two (address, port) pairs through.
- Only sending is judged. RTSP runs over TCP only (adapters/commands.py), so no RTP over
  UDP or multicast group is ever joined; inbound traffic is not a way out.
- Raw system calls (syscall(SYS_connect), io_uring) bypass the wrappers; ffmpeg and the
  libraries it uses for these protocols do not make them.
- With http_proxy set in the worker's environment ffmpeg connects to the proxy, which the
  policy then judges; a proxy in an allowed network would fetch anything, so run the
  worker without one.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from ipaddress import ip_address, ip_network
from pathlib import Path

from lookout_shared.addresses import Address, EgressPolicy, Rule

from lookout_snapshot_worker.adapters.capture_pool import CHILD_COMMAND, CapturePool
from lookout_snapshot_worker.adapters.process import ProcessTimeout, run_bounded

POLICY_VARIABLE = "LOOKOUT_EGRESS_POLICY"
REFUSAL_MARK = b"lookout-egress: refused"
SELF_TEST_SECONDS = 15.0
# Refuses every destination: what ``verify`` runs each binary and a capture child with.
REFUSE_ALL = EgressPolicy(
    (Rule("deny", ip_network("0.0.0.0/0"), "any"), Rule("deny", ip_network("::/0"), "any"))
)


class EgressUnavailable(RuntimeError):
    """The shim cannot hold a media child to the policy: the worker must not run captures."""


def system_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[Address]:
    """The name servers the C library asks (``nameserver`` lines), zone suffixes dropped."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    found: list[Address] = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                found.append(ip_address(parts[1].split("%", 1)[0]))
    return found


@dataclass(frozen=True)
class EgressShim:
    path: str
    policy: EgressPolicy

    @classmethod
    def load(cls, path: str, policy: EgressPolicy) -> EgressShim:
        if not os.path.isfile(path):
            raise EgressUnavailable(
                f"the egress shim {path} is missing: captures would run unguarded "
                "(build it with scripts/install.sh, or set LOOKOUT_EGRESS_SHIM_PATH)"
            )
        return cls(os.path.abspath(path), policy)

    def environment(self, policy: EgressPolicy | None = None) -> Mapping[str, str]:
        """The child's environment: the worker's own, with the shim preloaded first."""
        env = dict(os.environ)
        preload = env.get("LD_PRELOAD")
        env["LD_PRELOAD"] = f"{self.path} {preload}" if preload else self.path
        env[POLICY_VARIABLE] = (policy or self.policy).encode()
        return env

    async def verify(self, *binaries: str, capture_child: Sequence[str] = CHILD_COMMAND) -> None:
        """Prove each binary, and the capture child (started with ``capture_child``), is
        held by the shim, or raise EgressUnavailable."""
        for binary in binaries:
            await self._verify(binary, partial(self._run_binary, binary))
        await self._verify(" ".join(capture_child), partial(self._ask_child, capture_child))

    async def _run_binary(self, binary: str, port: int) -> bytes:
        # An unguarded binary connects and then gives up reading after rw_timeout.
        argv = [binary, "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "tcp",
                "-rw_timeout", "2000000", "-i", f"tcp://127.0.0.1:{port}"]  # fmt: skip
        return (await run_bounded(argv, SELF_TEST_SECONDS, self.environment(REFUSE_ALL))).stderr

    async def _ask_child(self, command: Sequence[str], port: int) -> bytes:
        # A held child dies on the connect with the shim's message on stderr, which is
        # what its answer then holds; an unguarded one answers with a failure of its own.
        children = CapturePool(self.environment(REFUSE_ALL), None, command)
        request = {"url": f"http://127.0.0.1:{port}/", "kind": "http", "io_timeout": 2,
                   "max_width": 16, "max_pixels": 256}  # fmt: skip
        try:
            return (await children.capture(request, SELF_TEST_SECONDS)).payload
        finally:
            await children.close()

    async def _verify(self, name: str, run: Callable[[int], Awaitable[bytes]]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            stderr = b""
            try:
                stderr = await run(listener.getsockname()[1])
            except ProcessTimeout:
                pass
            except OSError as exc:
                raise EgressUnavailable(f"cannot run {name}: {exc.strerror}") from None
            try:
                listener.accept()[0].close()
                connected = True
            except BlockingIOError:
                connected = False
        if connected or REFUSAL_MARK not in stderr:
            raise EgressUnavailable(
                f"{name} is not held by the egress shim {self.path} (a static or setuid "
                "binary, or a wrapper that drops LD_PRELOAD?): captures would run unguarded"
            )
