"""``lookout-notifier``: the WebSocket fan-out service."""

from __future__ import annotations

import uvicorn
from lookout_shared.telemetry import setup_process

from lookout_notifier.app import create_app, server_config
from lookout_notifier.settings import NotifierSettings


def main() -> None:
    settings = NotifierSettings()
    setup_process(settings.service_name, settings.log_level)
    # uvicorn handles SIGTERM/SIGINT: it stops accepting, closes sockets, runs the lifespan exit.
    uvicorn.Server(server_config(create_app(settings), settings)).run()


if __name__ == "__main__":
    main()
