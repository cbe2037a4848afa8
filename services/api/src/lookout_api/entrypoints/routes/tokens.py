"""Access tokens: an e-mail address and password exchanged for a JWT."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from lookout_api import handlers
from lookout_api.entrypoints.deps import DepsDep, client_ip
from lookout_api.entrypoints.problems import problems
from lookout_api.entrypoints.schemas import LoginForm, TokenOut

router = APIRouter(prefix="/api/v1")


@router.post(
    "/auth/token",
    response_model=TokenOut,
    tags=["auth"],
    name="issue_token",
    summary="Exchange an e-mail address and password for an access token",
    responses=problems(401, 413, 422, 429, 503),
)
async def token(deps: DepsDep, request: Request, form: Annotated[LoginForm, Form()]) -> TokenOut:
    access_token, expires_in = await handlers.login(
        deps, form.username, form.password, client_ip(request)
    )
    return TokenOut(access_token=access_token, expires_in=expires_in)
