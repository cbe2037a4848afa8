"""``lookout-api``: serve the REST API, or run an operator command.

lookout-api                      serve on LOOKOUT_BIND_HOST:LOOKOUT_API_PORT
lookout-api create-superuser     EMAIL; password from LOOKOUT_SUPERUSER_PASSWORD
lookout-api seed-demo            demo tenant, admin and stream (idempotent)
lookout-api dlq list|replay|purge  the dead-letter queues (docs/operations.md)
lookout-api outbox status        the outbox relay's backlog
lookout-api openapi              print the OpenAPI document (for client generators)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from lookout_shared.access_log import write_off_loop
from lookout_shared.cli_args import parser as command_parser
from lookout_shared.telemetry import setup_process

from lookout_api.entrypoints import cli
from lookout_api.entrypoints.http import create_app
from lookout_api.settings import ApiSettings


def main(argv: list[str] | None = None) -> None:
    parser = command_parser("lookout-api", __doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the REST API (the default)")
    superuser = sub.add_parser("create-superuser", help="create a platform superuser")
    superuser.add_argument("email")
    demo = sub.add_parser("seed-demo", help="create the demo tenant, admin and stream")
    demo.add_argument("--video", required=True, help="path of the demo video (in the media dir)")
    cli.add_subcommands(sub)
    sub.add_parser("openapi", help="print the OpenAPI document as JSON (no connection made)")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        # Unvalidated defaults suffice (no environment, no secret): nothing connects.
        print(json.dumps(create_app(ApiSettings.model_construct()).openapi(), indent=2))
        return
    settings = ApiSettings()
    setup_process(settings.service_name, settings.log_level)
    if args.command == "create-superuser":
        password = os.environ.get("LOOKOUT_SUPERUSER_PASSWORD", "")
        sys.exit(asyncio.run(cli.create_superuser(settings, args.email, password)))
    if args.command == "seed-demo":
        video_url = Path(os.path.abspath(args.video)).as_uri()
        sys.exit(asyncio.run(cli.seed_demo(settings, video_url)))
    if args.command in cli.COMMANDS:
        sys.exit(cli.run(settings, args))
    # Under load the access line is the most written one: its writing leaves the event loop.
    write_off_loop(settings.service_name)
    uvicorn.run(create_app(settings), **serve_options(settings))


def serve_options(settings: ApiSettings) -> dict[str, Any]:
    """uvicorn's options. uvloop and httptools (uvicorn[standard]) are named, not left to
    "auto", so a missing one fails at start instead of silently halving throughput; the
    access line is written by the api itself (entrypoints/front.py). The client address (login rate limits) is the TCP peer's, unless
    the peer is a proxy listed in LOOKOUT_FORWARDED_ALLOW_IPS: then uvicorn takes it from
    X-Forwarded-For (the right-most address that is not a trusted proxy)."""
    return {
        "host": settings.bind_host,
        "port": settings.api_port,
        "log_config": None,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
    }
