"""The problem responses every route documents, so the OpenAPI document is complete."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 7807 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


_TITLES = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role does not allow this",
    404: "Not found (or another tenant's)",
    409: "Conflict",
    412: "The If-Match ETag is stale",
    413: "Request body too large",
    422: "Invalid input; errors[] lists field paths",
    429: "Rate limited; see Retry-After",
    503: "The database is unavailable; see Retry-After",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "description": _TITLES[code],
            "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
        }
        for code in codes
    }


# What any authenticated route may answer.
COMMON = problems(401, 403, 404, 413, 422, 429, 503)
