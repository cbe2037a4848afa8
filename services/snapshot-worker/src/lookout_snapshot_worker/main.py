"""``lookout-snapshot-worker``: consume capture and probe commands, serve health on worker_port."""

from __future__ import annotations

import uvicorn
from lookout_shared.cli_args import parser as command_parser
from lookout_shared.telemetry import setup_process

from lookout_snapshot_worker.entrypoints.http import create_app
from lookout_snapshot_worker.settings import WorkerSettings


def main(argv: list[str] | None = None) -> None:
    command_parser(
        "lookout-snapshot-worker",
        "Consumes capture and probe commands; serves /healthz, /readyz, /metrics.",
    ).parse_args(argv)
    settings = WorkerSettings()
    setup_process(settings.service_name, settings.log_level)
    # uvicorn handles SIGTERM/SIGINT: the lifespan's shutdown closes everything in order.
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.worker_port,
        log_config=None,
        access_log=False,
        # asyncio's own loop, not uvloop: the worker starts children (ffprobe, capture
        # children, hot stream readers), and uvloop (libuv) starts them with fork, which
        # copies the page tables of this process on the event loop's thread, where Python's
        # subprocess uses vfork (adapters/child.py). Measured when every capture started an
        # ffmpeg: about 10% less CPU per snapshot (bench_worker).
        loop="asyncio",
    )


if __name__ == "__main__":
    main()
