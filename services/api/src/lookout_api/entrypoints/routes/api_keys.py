"""API keys: create (the secret shown once), list, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from lookout_api import handlers
from lookout_api.entrypoints.deps import CheckedPrincipalDep, DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON
from lookout_api.entrypoints.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyList, ApiKeyOut

router = APIRouter(prefix="/api/v1")


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["api-keys"],
    summary="Create an API key (its secret is shown once)",
    responses=COMMON,
)
async def create_api_key(deps: DepsDep, principal: PrincipalDep, body: ApiKeyIn) -> ApiKeyCreated:
    row, secret = await handlers.create_api_key(
        deps, principal, body.name, body.role, body.tenant_id
    )
    return ApiKeyCreated.model_validate({**dict(row), "secret": secret})


@router.get(
    "/api-keys",
    response_model=ApiKeyList,
    tags=["api-keys"],
    summary="List API keys",
    responses=COMMON,
)
async def list_api_keys(
    deps: DepsDep, principal: CheckedPrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> ApiKeyList:
    rows = await handlers.list_api_keys(deps, principal, limit)
    return ApiKeyList(items=[ApiKeyOut.model_validate(dict(r)) for r in rows])


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    tags=["api-keys"],
    summary="Revoke an API key",
    responses=COMMON,
)
async def revoke_api_key(deps: DepsDep, principal: PrincipalDep, key_id: uuid.UUID) -> ApiKeyOut:
    row = await handlers.revoke_api_key(deps, principal, key_id)
    return ApiKeyOut.model_validate({k: row[k] for k in ApiKeyOut.model_fields})
