"""Users: create, list, the caller, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from lookout_api import handlers
from lookout_api.entrypoints.deps import CheckedPrincipalDep, DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, problems
from lookout_api.entrypoints.schemas import UserIn, UserList, UserOut

router = APIRouter(prefix="/api/v1", responses=COMMON)


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    tags=["users"],
    summary="Create a user",
    responses=problems(409),
)
async def create_user(deps: DepsDep, principal: PrincipalDep, body: UserIn) -> UserOut:
    row = await handlers.create_user(
        deps, principal, body.email, body.password, body.role, body.tenant_id
    )
    return UserOut.model_validate(dict(row))


@router.get("/users", response_model=UserList, tags=["users"], summary="List users")
async def list_users(
    deps: DepsDep, principal: CheckedPrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> UserList:
    rows = await handlers.list_users(deps, principal, limit)
    return UserList(items=[UserOut.model_validate(dict(r)) for r in rows])


@router.get(
    "/users/me",
    response_model=UserOut,
    tags=["users"],
    name="get_me",
    summary="The calling user",
)
async def me(deps: DepsDep, principal: CheckedPrincipalDep) -> UserOut:
    return UserOut.model_validate(dict(await handlers.current_user(deps, principal)))


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    summary="Delete a user",
    responses=problems(409),
    response_class=Response,
)
async def delete_user(deps: DepsDep, principal: PrincipalDep, user_id: uuid.UUID) -> Response:
    await handlers.delete_user(deps, principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
