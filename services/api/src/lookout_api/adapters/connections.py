"""The api's Postgres pool and Redis client, shared by every adapter that uses them.

Adapters read them from here at each use rather than keeping their own reference, so a
replaced client (an outage drill replaces Redis with an unreachable one) reaches all of
them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis


@dataclass
class Connections:
    pool: asyncpg.Pool
    redis: Redis
