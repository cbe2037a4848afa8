"""The commands of ``lookout-notifier``, the WebSocket fan-out service.

lookout-notifier           serve WebSocket and SSE rooms on LOOKOUT_NOTIFIER_PORT
lookout-notifier schema    print the JSON Schema of the frames (no connection made)
"""

from __future__ import annotations

import json

import uvicorn
from lookout_shared.cli_args import parser as command_parser
from lookout_shared.telemetry import setup_process

from lookout_notifier.domain import frame_schemas
from lookout_notifier.entrypoints.http import create_app, server_config
from lookout_notifier.settings import NotifierSettings


def main(argv: list[str] | None = None) -> None:
    parser = command_parser("lookout-notifier", "The WebSocket and SSE fan-out service.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve WebSocket and SSE rooms (the default)")
    sub.add_parser("schema", help="print the JSON Schema of the frames")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(frame_schemas.document(), indent=2))
        return
    settings = NotifierSettings()
    setup_process(settings.service_name, settings.log_level)
    # uvicorn handles SIGTERM/SIGINT: it stops accepting, closes sockets, runs the lifespan exit.
    uvicorn.Server(server_config(create_app(settings), settings)).run()
