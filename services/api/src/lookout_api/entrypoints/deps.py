"""FastAPI dependencies: the app's Deps and the authenticated principal.

Revocation: a request that may change anything (every method but GET, HEAD and OPTIONS,
so also every route added later) has its principal checked against Postgres first, and so
do the reads behind :data:`CheckedPrincipalDep` (accounts, keys, audit, quotas). Stream,
snapshot, count and dashboard reads trust a valid token until it expires, without a query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from lookout_shared.logs import bind_tenant
from lookout_shared.tokens import Principal

from lookout_api import handlers
from lookout_api.bootstrap import Deps
from lookout_api.domain.errors import Unauthorized
from lookout_api.domain.text import text_problem

_bearer = HTTPBearer(
    auto_error=False, description="an access token from /api/v1/auth/token, or an API key"
)


def app_deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


async def get_deps(request: Request) -> Deps:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
    # request for a dictionary lookup.
    return app_deps(request)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(request: Request, credentials: Credentials) -> Principal:
    """A JWT is verified locally (no database query on a read); an API key by its hash.
    Anything but a read is checked against the account too."""
    principal = await _authenticate(request, credentials)
    if request.method not in _READS:
        await handlers.ensure_current(app_deps(request), principal)
    return principal


async def get_checked_principal(request: Request, credentials: Credentials) -> Principal:
    """The principal, checked against the account whatever the method."""
    principal = await _authenticate(request, credentials)
    await handlers.ensure_current(app_deps(request), principal)
    return principal


async def _authenticate(request: Request, credentials: Credentials) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send an access token or API key as 'Authorization: Bearer <token>'")
    principal = await handlers.authenticate(app_deps(request), credentials.credentials)
    bind_tenant(principal.tenant_id)  # the request's log lines name the tenant
    return principal


async def storable_query(request: Request) -> None:
    """Every route's query parameters, declared or not, hold text Postgres can store
    (domain/text.py): one app-wide check, so no route can forget it."""
    errors = [
        {"loc": ("query", name), "msg": problem, "type": "unstorable_text"}
        for name, value in request.query_params.multi_items()
        if (problem := text_problem(name) or text_problem(value)) is not None
    ]
    if errors:
        raise RequestValidationError(errors)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


DepsDep = Annotated[Deps, Depends(get_deps)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
CheckedPrincipalDep = Annotated[Principal, Depends(get_checked_principal)]
