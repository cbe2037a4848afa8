"""The api bench's peers, each served by uvicorn with the api's own options (uvloop,
httptools, one worker, no access log):

- ``bare``: Starlette answering fixed bytes: the ceiling of this machine's Python HTTP stack;
- ``naive``: the cache a user would write in ten lines: FastAPI, a Bearer header check and
  ``await redis.get(key)`` (redis-py, one round trip), the bytes returned as they are.

Run: ``python -m bench.api_peers bare|naive PORT`` (the naive peer reads ``LOOKOUT_REDIS_URL``
and ``BENCH_NAIVE_PREFIX``).
"""

from __future__ import annotations

import hashlib
import os
import sys

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Response
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

BODY = b'{"id":"00000000-0000-0000-0000-000000000000","name":"cam","status":"online"}'


def bare() -> Starlette:
    async def fixed(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", fixed)])


def naive_key(prefix: str, path: str, authorization: str) -> str:
    """An entry per path and caller (the token names the tenant and role)."""
    return prefix + hashlib.sha256(f"{path} {authorization}".encode()).hexdigest()


def naive() -> FastAPI:
    app = FastAPI()
    redis = Redis.from_url(os.environ["LOOKOUT_REDIS_URL"])
    prefix = os.environ.get("BENCH_NAIVE_PREFIX", "naive:")

    async def cached(path: str, authorization: str | None) -> Response:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401)
        body = await redis.get(naive_key(prefix, path, authorization))
        if body is None:
            raise HTTPException(404)
        return Response(body, media_type="application/json")

    @app.get("/api/v1/streams/{stream_id}")
    async def one(stream_id: str, authorization: str | None = Header(None)) -> Response:
        return await cached(f"/api/v1/streams/{stream_id}", authorization)

    @app.get("/api/v1/streams")
    async def page(limit: int = 50, authorization: str | None = Header(None)) -> Response:
        return await cached(f"/api/v1/streams?limit={limit}", authorization)

    return app


def main() -> None:
    which, port = sys.argv[1], int(sys.argv[2])
    app = bare() if which == "bare" else naive()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
