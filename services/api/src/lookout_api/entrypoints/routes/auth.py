"""Tokens, tenants and users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, PrincipalDep
from lookout_api.entrypoints.schemas import TenantIn, TenantOut, TokenOut, UserIn, UserOut

router = APIRouter(prefix="/api/v1")


@router.post("/auth/token", response_model=TokenOut, tags=["auth"])
async def token(deps: DepsDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    access_token, expires_in = await handlers.login(deps, form.username, form.password)
    return TokenOut(access_token=access_token, expires_in=expires_in)


@router.post(
    "/tenants", response_model=TenantOut, status_code=status.HTTP_201_CREATED, tags=["tenants"]
)
async def create_tenant(deps: DepsDep, principal: PrincipalDep, body: TenantIn) -> TenantOut:
    row = await handlers.create_tenant(deps, principal, body.name)
    return TenantOut.model_validate(dict(row))


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
async def create_user(deps: DepsDep, principal: PrincipalDep, body: UserIn) -> UserOut:
    row = await handlers.create_user(
        deps, principal, body.email, body.password, body.role, body.tenant_id
    )
    return UserOut.model_validate(dict(row))


@router.get("/users/me", response_model=UserOut, tags=["users"])
async def me(deps: DepsDep, principal: PrincipalDep) -> UserOut:
    return UserOut.model_validate(dict(await handlers.current_user(deps, principal)))
