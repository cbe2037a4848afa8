"""Tenants and users. ``principal`` None means the operator's CLI, which may do anything."""

from __future__ import annotations

import uuid

from lookout_shared.tokens import Principal, Role

from lookout_api.domain import access
from lookout_api.domain.audit import Entry
from lookout_api.domain.errors import Conflict, InvalidInput, NotFound, Unauthorized
from lookout_api.handlers.outbox_writes import commit
from lookout_api.ports import Deps, Row

MIN_PASSWORD = 12


async def create_tenant(deps: Deps, principal: Principal | None, name: str) -> Row:
    if principal is not None:
        access.require_role(principal, "superuser")
    async with deps.db.transaction() as tx:
        row = await tx.insert_tenant(name)
        if row is None:
            raise Conflict(f"a tenant named {name!r} exists")
        entry = Entry("tenant.created", "tenant", row["id"], row["id"], {"name": name})
        await commit(tx, principal, [entry], [])
    return row


async def create_user(
    deps: Deps,
    principal: Principal | None,
    email: str,
    password: str,
    role: Role,
    tenant_id: uuid.UUID | None,
) -> Row:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    if role == "superuser":
        if principal is not None:
            access.require_role(principal, "superuser")
        tenant_id = None
    elif principal is not None:
        access.require_role(principal, "admin")
        tenant_id = access.acting_tenant(principal, tenant_id)
    elif tenant_id is None:
        raise InvalidInput("tenant_id: required for a tenant user")
    password_hash = await deps.passwords.hash(password)
    async with deps.db.transaction() as tx:
        if tenant_id is not None and not await tx.tenant_exists(tenant_id):
            raise NotFound("no such tenant")
        row = await tx.insert_user(tenant_id, email, password_hash, role)
        if row is None:
            raise Conflict("a user with this e-mail exists")
        entry = Entry("user.created", "user", row["id"], tenant_id, {"email": email, "role": role})
        await commit(tx, principal, [entry], [])
    return row


async def current_user(deps: Deps, principal: Principal) -> Row:
    async with deps.db.connect() as session:
        row = await session.user_by_id(principal.user_id)
    if row is None:
        raise Unauthorized("the account no longer exists")
    return row


async def list_users(deps: Deps, principal: Principal, limit: int) -> list[Row]:
    access.require_role(principal, "admin")
    async with deps.db.connect() as session:
        return await session.list_users(access.tenant_filter(principal), limit)


async def delete_user(deps: Deps, principal: Principal, user_id: uuid.UUID) -> None:
    """Its API keys go with it, on every api process at once; its access tokens lose every
    write and account read at once and keep stream reads until they expire."""
    access.require_role(principal, "admin")
    if user_id == principal.user_id:
        raise Conflict("you cannot delete your own account")
    async with deps.db.transaction() as tx:
        row = await tx.delete_user(user_id, access.tenant_filter(principal))
        if row is None:
            raise NotFound("no such user")
        if row["role"] == "superuser" and not principal.is_superuser:
            raise NotFound("no such user")
        entry = Entry("user.deleted", "user", user_id, row["tenant_id"], {"email": row["email"]})
        await commit(tx, principal, [entry], [])
