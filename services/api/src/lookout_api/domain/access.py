"""Who may do what. Pure rules: no I/O.

Roles rise viewer < operator < admin; a platform superuser may act in every tenant but must
name the tenant it acts in. Another tenant's resource is reported as missing (404), never
as forbidden, so ids cannot be probed across tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lookout_shared.tokens import Principal, Role

from lookout_api.domain.errors import Forbidden, InvalidInput, Unauthorized
from lookout_api.domain.listing import FIELDS
from lookout_api.domain.rows import Row

RANK: dict[Role, int] = {"viewer": 0, "operator": 1, "admin": 2, "superuser": 3}


def require_role(principal: Principal, minimum: Role) -> None:
    if RANK[principal.role] < RANK[minimum]:
        raise Forbidden(f"this action needs the {minimum} role; you are {principal.role}")


def still_current(principal: Principal, account: Row | None) -> None:
    """Refuse a token whose account is gone or disabled, or changed since it was issued
    (role, tenant or password: each raises the account's token version)."""
    if account is None:
        raise Unauthorized("the account behind this token no longer exists; log in again")
    claimed = (principal.role, principal.tenant_id, principal.version)
    if claimed != (account["role"], account["tenant_id"], account["token_version"]):
        raise Unauthorized("the account changed since this token was issued; log in again")


def acting_tenant(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID:
    """The tenant a write lands in: the principal's own, or the one a superuser names."""
    if principal.is_superuser:
        if requested is None:
            raise InvalidInput("a superuser must name the tenant_id to act in")
        return requested
    assert principal.tenant_id is not None  # Principal: only a superuser has none
    if requested is not None and requested != principal.tenant_id:
        raise Forbidden("you can only act in your own tenant")
    return principal.tenant_id


def read_scope(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The tenant a read covers: the caller's own; a superuser's choice (None: all)."""
    if principal.is_superuser:
        return requested
    if requested is not None and requested != principal.tenant_id:
        raise Forbidden("you can only read your own tenant")
    return principal.tenant_id


# Fields that say where a camera is: a stream's url, and the detail of a failure (ffmpeg's
# words name the host and path). Viewers only watch, so they never receive these; they get
# a failure's category (``error_category``, ``last_error_category``) instead.
OPERATOR_FIELDS = frozenset({"url", "last_error", "error"})


def visible_fields(
    principal: Principal, wanted: Sequence[str] | None = None, fields: Sequence[str] = FIELDS
) -> tuple[str, ...]:
    """The fields of ``fields`` (a stream's by default) a principal may receive, of those
    wanted (None: every field)."""
    hidden = OPERATOR_FIELDS if RANK[principal.role] < RANK["operator"] else frozenset()
    return tuple(f for f in (fields if wanted is None else wanted) if f not in hidden)


def visible(principal: Principal, row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``row`` (a job, a dashboard entry) the principal may receive."""
    return {f: row[f] for f in visible_fields(principal, fields=tuple(row.keys()))}


def tenant_filter(principal: Principal) -> uuid.UUID | None:
    """The tenant every read is scoped to; None (all tenants) only for a superuser."""
    return None if principal.is_superuser else principal.tenant_id


@dataclass(frozen=True)
class KeyPrincipal(Principal):
    """A caller authenticated by an API key: it acts with the key's role, for its creator."""

    key_id: uuid.UUID


def actor_of(principal: Principal | None) -> tuple[str, uuid.UUID | None, uuid.UUID | None]:
    """(kind, actor id, api key id) for the audit log; no principal means the operator CLI."""
    if principal is None:
        return "cli", None, None
    if isinstance(principal, KeyPrincipal):
        return "api_key", principal.user_id, principal.key_id
    return "user", principal.user_id, None


def grantable(principal: Principal, role: Role) -> None:
    """Nobody hands out more power than they hold."""
    if RANK[role] > RANK[principal.role]:
        raise Forbidden(f"you cannot grant the {role} role; you are {principal.role}")
