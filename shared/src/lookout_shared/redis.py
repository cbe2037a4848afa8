"""Redis adapter: a client per process and the key space of this deployment.

Every key starts with the deployment's prefix (``LOOKOUT_REDIS_PREFIX``), so a test run and
a development stack can share a server without touching each other's keys.
"""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)
