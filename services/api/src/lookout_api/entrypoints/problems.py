"""The RFC 7807 problem body every error response documents (``components/schemas/Problem``).

The exception that produces such a body is :class:`lookout_shared.http.Problem`; this model,
``ProblemBody``, only describes it (its schema keeps the name ``Problem``). Routes declare their error responses with :func:`problems`,
which references this one schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_JSON = "application/problem+json"


class ProblemBody(BaseModel):
    """RFC 7807 problem details: the body's schema (the exception is lookout_shared.http.Problem)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "the resource's version; send it back as If-Match or If-None-Match",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "the URL of what was created or accepted",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer"},
    },
    "X-Lookout-Degraded": {
        "description": "'redis' when Redis could not help and Postgres alone answered",
        "schema": {"type": "string", "enum": ["redis"]},
    },
    "WWW-Authenticate": {
        "description": "the scheme to authenticate with",
        "schema": {"type": "string"},
    },
}

_PROBLEM_TITLES = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role does not allow this",
    404: "Not found (or another tenant's)",
    409: "Conflict",
    412: "The If-Match ETag is stale",
    413: "Request body too large",
    416: "The Range is malformed or past the end (Content-Range: bytes */size)",
    422: "Invalid input; errors[] lists field paths",
    429: "Rate limited; see Retry-After",
    503: "A dependency is unavailable; see Retry-After",
}
_PROBLEM_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",), 503: ("Retry-After",)}


def headers(*names: str) -> dict[str, Any]:
    """A response's documented headers, for a route's ``responses=``."""
    return {"headers": {name: HEADERS[name] for name in names}}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Error responses of a route, each a reference to the one Problem schema."""
    return {
        code: {
            "description": _PROBLEM_TITLES[code],
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
            **headers(*_PROBLEM_HEADERS.get(code, ())),
        }
        for code in codes
    }


# What any authenticated route may answer.
COMMON = problems(401, 403, 404, 413, 422, 429, 503)
