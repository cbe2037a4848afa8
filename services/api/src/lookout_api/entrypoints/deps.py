"""FastAPI dependencies: the app's Deps and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from lookout_shared.tokens import InvalidToken, Principal

from lookout_api.bootstrap import Deps
from lookout_api.domain.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False)


def get_deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Verifies the JWT locally: no database query on a read."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send an access token as 'Authorization: Bearer <token>'")
    try:
        return get_deps(request).codec.verify(credentials.credentials)
    except InvalidToken:
        raise Unauthorized("the access token is invalid or expired") from None


DepsDep = Annotated[Deps, Depends(get_deps)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
