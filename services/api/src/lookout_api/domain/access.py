"""Who may do what. Pure rules: no I/O.

Roles rise viewer < operator < admin; a platform superuser may act in every tenant but must
name the tenant it acts in. Another tenant's resource is reported as missing (404), never
as forbidden, so ids cannot be probed across tenants.
"""

from __future__ import annotations

import uuid

from lookout_shared.tokens import Principal, Role

from lookout_api.domain.errors import Forbidden, InvalidInput

RANK: dict[Role, int] = {"viewer": 0, "operator": 1, "admin": 2, "superuser": 3}


def require_role(principal: Principal, minimum: Role) -> None:
    if RANK[principal.role] < RANK[minimum]:
        raise Forbidden(f"this action needs the {minimum} role; you are {principal.role}")


def acting_tenant(principal: Principal, requested: uuid.UUID | None) -> uuid.UUID:
    """The tenant a write lands in: the principal's own, or the one a superuser names."""
    if principal.is_superuser:
        if requested is None:
            raise InvalidInput("a superuser must name the tenant_id to act in")
        return requested
    assert principal.tenant_id is not None
    if requested is not None and requested != principal.tenant_id:
        raise Forbidden("you can only act in your own tenant")
    return principal.tenant_id


def tenant_filter(principal: Principal) -> uuid.UUID | None:
    """The tenant every read is scoped to; None (all tenants) only for a superuser."""
    return None if principal.is_superuser else principal.tenant_id
