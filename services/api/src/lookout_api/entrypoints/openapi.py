"""The OpenAPI document, shaped for client generators.

- Operation ids are ``<resource>-<verb>[-<rest>]`` (``streams-list``, ``snapshots-request``),
  made by :func:`operation_id` for every route, also those added later: the last tag names
  the resource, the route's name the verb. Generated clients get ``streams_list`` instead of
  ``list_streams_api_v1_streams_get``.
- Every error response (4xx, 5xx) references one schema, ``#/components/schemas/Problem``
  (``problems.problems``), whatever a route wrote: an inline copy
  (``ProblemBody.model_json_schema()``), which generators turn into one duplicate model per
  response, FastAPI's default 422 body, or no content at all.
- Both ways in are declared: the OAuth2 password flow (``/docs`` can log in) and a bearer
  token (an access token or an API key, both sent as ``Authorization: Bearer``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from lookout_api.entrypoints.problems import PROBLEM_JSON, PROBLEM_REF, ProblemBody

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path)
OAUTH2 = "OAuth2Password"
BEARER = "HTTPBearer"  # the scheme FastAPI names after deps.HTTPBearer


def operation_id(route: APIRoute) -> str:
    """``<resource>-<verb>[-<rest>]``: the route's own (last) tag, the first word of its
    name, and the name's other words but those naming the resource (``create_stream``
    tagged ``streams`` is ``streams-create``; ``get_latest_image`` tagged ``snapshots`` is
    ``snapshots-get-latest-image``). Set ``name=`` on a route to choose its verb."""
    tag = str(route.tags[-1]) if route.tags else "api"
    verb, *words = route.name.lower().split("_")
    resource = set(tag.split("-"))
    resource |= {word.removesuffix("s") for word in resource}
    return "-".join([tag, verb, *(w for w in words if w not in resource)])


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = ProblemBody.model_json_schema()
    schemes = components.setdefault("securitySchemes", {})
    schemes[OAUTH2] = {
        "type": "oauth2",
        "description": "an e-mail address and password exchanged for an access token",
        "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    }
    for operation in _operations(doc):
        if {BEARER: []} in operation.get("security", []):
            operation["security"] = [{OAUTH2: []}, {BEARER: []}]
        for code, response in operation.get("responses", {}).items():
            # Every error is answered as a Problem (install_problem_handlers), whatever a
            # route wrote (an inline copy, FastAPI's own 422 body, or nothing).
            if code.startswith(("4", "5")):
                response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    if '"#/components/schemas/HTTPValidationError"' not in json.dumps(doc["paths"]):
        for unused in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(unused, None)
    return doc


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc.get("paths", {}).values() for op in item.values()]
