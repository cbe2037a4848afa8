"""orjson for bodies the routes assemble themselves (sparse lists, bulk results); models
with a response_model are serialised by pydantic-core, which is as fast."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # UTC as "Z", like pydantic, so a stream reads the same in a list and on its own.
        # asyncpg returns its own UUID type, which orjson leaves to ``default``.
        return orjson.dumps(content, default=str, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
