"""The processes of the api bench and the load on them: the api as ``make run`` and the
image run it (its own entrypoint, default settings, INFO logs to a file as
scripts/supervise.sh writes them, traces exported as compose configures them, to a sink
here), its peers (api_peers.py), wrk, and py-spy."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent  # the services' entrypoints, installed beside python
CONNECTIONS = 64


@dataclass(frozen=True)
class Wrk:
    rps: float
    p50_ms: float
    p99_ms: float
    failed: int = 0  # non-2xx answers and socket errors

    def figure(self) -> str:
        failed = f", {self.failed:,} FAILED" if self.failed else ""
        return f"{self.rps:,.0f} req/s (p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms{failed})"


def spread(runs: Sequence[Wrk]) -> tuple[Wrk, str]:
    """The round with the median req/s, and ``min/median/max`` req/s over the rounds."""
    ordered = sorted(runs, key=lambda w: w.rps)
    median = ordered[(len(ordered) - 1) // 2]
    rps = [w.rps for w in ordered]
    return median, f"{min(rps):,.0f}/{statistics.median(rps):,.0f}/{max(rps):,.0f}"


def shipped_env(prefix: str, media: Path, storage: Path, sink: OtlpSink) -> dict[str, str]:
    """The environment of the api as ``make run`` and the image run it: default settings
    (INFO logs with an access line per request, the read cache with its in-process layer),
    traces exported over OTLP as compose does (default sampler), to ``sink``; only its key
    space and directories are the bench's own."""
    return os.environ | {
        "LOOKOUT_REDIS_PREFIX": prefix,
        "LOOKOUT_MEDIA_DIR": str(media),
        "LOOKOUT_STORAGE_DIR": str(storage),
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    argv: list[str],
    env: dict[str, str],
    log: Path,
    ready: str = "/readyz",
    port_env: str = "LOOKOUT_API_PORT",
) -> Iterator[tuple[str, int]]:
    """Start ``argv`` (it reads its port from ``port_env`` or its last argument ``{port}``),
    wait until ``ready`` answers below 500; (base URL, pid)."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env | {port_env: str(port)},
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}{ready}", timeout=2).status_code < 500:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not become ready (exit {proc.returncode})")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk_script(folder: Path, requests: list[tuple[str, str, str]]) -> Path:
    """A wrk Lua script that sends a random one of ``requests`` (method, path, token)."""
    entries = ",\n".join(f'{{"{m}", "{p}", "Bearer {t}"}}' for m, p, t in requests)
    script = folder / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(
        f"""local reqs = {{
{entries}
}}
math.randomseed(7)
request = function()
  local r = reqs[math.random(#reqs)]
  return wrk.format(r[1], r[2], {{["Authorization"] = r[3]}})
end
"""
    )
    return script


def run_wrk(base: str, script: Path, seconds: int) -> Wrk:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        # Reported, not fatal: one bad row must not cost the whole run's other rows.
        print(f"wrk saw failed requests against {base}:\n{out}", flush=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    failed += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Wrk(rps, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), failed)


def _wrk_ms(out: str, pct: str) -> float:
    value, unit = re.search(rf"^\s+{pct}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


WARM_S = 5  # long enough to cache every entry of the working set, even on a loaded machine


def throughput(base: str, script: Path, seconds: int) -> Wrk:
    run_wrk(base, script, WARM_S)  # warm: connections, caches, Postgres buffers
    return run_wrk(base, script, seconds)


def flame_graph(pid: int, base: str, script: Path, svg: Path, seconds: int) -> None:
    """py-spy's flame graph of process ``pid`` under wrk's load (not a measured run)."""
    spy = subprocess.Popen(
        [str(BIN / "py-spy"), "record", "-p", str(pid), "-o", str(svg), "-d", str(seconds)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with contextlib.suppress(subprocess.CalledProcessError, RuntimeError):
        run_wrk(base, script, seconds)
    spy.wait(60)


class OtlpSink:
    """Answers OTLP/HTTP exports with 200 and drops them: the api exports its spans as it
    does under compose, without a collector's cost on these cores."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
