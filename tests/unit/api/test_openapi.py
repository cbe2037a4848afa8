"""The OpenAPI document is one client generators turn into a clean SDK: a stable, unique
``<resource>-<verb>`` id and a summary on every operation (routes added later included),
one shared Problem schema behind every error, documented headers, login from /docs, and
an example for every request body. Built from the app without connecting to anything."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from lookout_api.entrypoints import (
    frame_schemas,
    openapi,
    schemas,
    snapshot_schemas,
    stream_schemas,
    webhook_schemas,
)
from lookout_api.entrypoints.http import create_app
from lookout_api.entrypoints.problems import PROBLEM_JSON, PROBLEM_REF, ProblemBody
from lookout_api.settings import ApiSettings
from pydantic import BaseModel

from tests.unit.api.client_generation import generate_client

OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(ApiSettings.model_construct()).openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def test_operation_ids_are_unique_resource_verb_names(doc: dict[str, Any]) -> None:
    ids = {label: op.get("operationId", "") for label, op in operations(doc)}
    assert all(op.get("tags") for _, op in operations(doc)), "a tag names the resource"
    assert not [label for label, i in ids.items() if not OPERATION_ID.match(i)], ids
    assert len(set(ids.values())) == len(ids), ids
    assert {
        "POST /api/v1/auth/token": "auth-issue-token",
        "GET /api/v1/streams": "streams-list",
        "POST /api/v1/streams": "streams-create",
        "GET /api/v1/streams/{stream_id}": "streams-get",
        "POST /api/v1/streams/{stream_id}/snapshots": "snapshots-request",
        "GET /api/v1/jobs/{job_id}": "jobs-get",
        "GET /api/v1/snapshots/{snapshot_id}/image": "snapshots-get-image",
    }.items() <= ids.items()


def test_a_route_added_later_gets_an_operation_id_from_its_tag_and_name() -> None:
    app = FastAPI(generate_unique_id_function=openapi.operation_id)

    @app.get("/x", tags=["snapshots"])
    async def get_latest_jpeg() -> None: ...

    @app.post("/y", tags=["api-keys"])
    async def rotate_api_key() -> None: ...

    ids = [op["operationId"] for _, op in operations(app.openapi())]
    assert ids == ["snapshots-get-latest-jpeg", "api-keys-rotate"]


def test_every_operation_has_its_own_summary(doc: dict[str, Any]) -> None:
    summaries = [op.get("summary", "") for _, op in operations(doc)]
    assert all(summaries) and len(set(summaries)) == len(summaries), summaries


def test_every_error_response_references_the_one_problem_schema(doc: dict[str, Any]) -> None:
    for label, op in operations(doc):
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (
                    label,
                    code,
                )
    text = json.dumps(doc)
    assert text.count('"title": "Problem"') == 1  # components/schemas/Problem only
    assert doc["components"]["schemas"]["Problem"] == ProblemBody.model_json_schema()
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_error_responses_of_a_later_route_become_the_shared_reference() -> None:
    """An inline copy, FastAPI's default 422 body, a bare description: all the one Problem."""
    app = FastAPI()
    inline = {"content": {PROBLEM_JSON: {"schema": ProblemBody.model_json_schema()}}}

    @app.get(
        "/x/{n}", responses={416: {"description": "range", **inline}, 404: {"description": "no"}}
    )
    async def x(n: int) -> None: ...

    openapi.install(app)
    doc = app.openapi()
    responses = doc["paths"]["/x/{n}"]["get"]["responses"]
    assert {"404", "416", "422"} <= set(responses)
    for code in ("404", "416", "422"):
        assert responses[code]["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, code
    assert set(doc["components"]["schemas"]) == {"Problem"}


def test_response_headers_are_documented(doc: dict[str, Any]) -> None:
    paths = doc["paths"]

    def headers(path: str, method: str, code: str) -> set[str]:
        return set(paths[path][method]["responses"][code].get("headers", {}))

    assert {"ETag", "Location"} <= headers("/api/v1/streams", "post", "201")
    assert "ETag" in headers("/api/v1/streams/{stream_id}", "get", "200")
    assert "ETag" in headers("/api/v1/streams/{stream_id}", "patch", "200")
    assert "Location" in headers("/api/v1/streams/{stream_id}/snapshots", "post", "202")
    assert "X-Lookout-Degraded" in headers("/api/v1/streams", "get", "200")
    assert "X-Lookout-Degraded" in headers("/api/v1/counts", "get", "200")
    assert "ETag" in headers("/api/v1/snapshots/{snapshot_id}/image", "get", "200")
    assert "WWW-Authenticate" in headers("/api/v1/streams", "get", "401")
    assert "Retry-After" in headers("/api/v1/streams", "get", "429")
    assert "Retry-After" in headers("/api/v1/streams", "get", "503")


def test_docs_can_log_in_with_the_password_flow_or_a_bearer_token(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    for label, op in operations(doc):
        if label != "POST /api/v1/auth/token":
            assert op["security"] == [{"OAuth2Password": []}, {"HTTPBearer": []}], label


def test_every_request_body_has_examples_its_model_accepts(doc: dict[str, Any]) -> None:
    models: dict[str, type[BaseModel]] = {
        name: value
        for module in (schemas, stream_schemas, snapshot_schemas, frame_schemas, webhook_schemas)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseModel)
    }
    for label, op in operations(doc):
        if "requestBody" not in op:
            continue
        for media in op["requestBody"]["content"].values():
            name = media["schema"]["$ref"].rsplit("/", 1)[-1]
            examples = doc["components"]["schemas"][name].get("examples", [])
            assert examples, label
            for example in examples:
                models[name].model_validate(example)


def test_openapi_python_client_generates_without_a_warning(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "openapi.json").write_text(json.dumps(doc))
    generate_client(tmp_path)
    models = {p.stem for p in (tmp_path / "client/lookout_client/models").glob("*.py")}
    assert "problem" in models and not [m for m in models if re.match(r"problem.+", m)]
