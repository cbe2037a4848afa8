"""Request and response bodies of the REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from pydantic_core import PydanticCustomError

from lookout_api.domain.text import check_text


class TextChecked(BaseModel):
    """Refuses, in every field of every subclass, text Postgres cannot store (a NUL
    character, an unpaired surrogate): a 422 naming the field instead of a database error.
    Nested models check their own fields, so the error names the exact path."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        try:
            return check_text(value)
        except ValueError as exc:
            raise PydanticCustomError("unstorable_text", str(exc)) from None


class Body(TextChecked):
    """A JSON request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class LoginForm(TextChecked):
    """The OAuth2 password grant form of ``POST /auth/token``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"username": "admin@example.com", "password": "a-long-password"}]
        }
    )

    grant_type: str | None = Field(None, pattern="^password$")
    username: str = Field(description="the e-mail address")
    password: str
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class TenantIn(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Acme"}]})

    name: str = Field(min_length=1, max_length=200)


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class UserIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ops@example.com", "password": "a-long-password", "role": "operator"}
            ]
        }
    )

    email: EmailStr
    password: str = Field(min_length=12, max_length=256)
    role: Literal["admin", "operator", "viewer"]
    tenant_id: uuid.UUID | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    email: str
    role: str
    created_at: datetime


# Set ("redis") on a response Redis could not help with: its data came from Postgres alone.
DEGRADED_HEADER = "X-Lookout-Degraded"


def degraded_headers(degraded: bool) -> dict[str, str]:
    return {DEGRADED_HEADER: "redis"} if degraded else {}


class CountsOut(BaseModel):
    scope: str = Field(description="the tenant id, or 'platform' for a superuser")
    counts: dict[str, int] = Field(description="non-zero fields only")
    source: Literal["counts", "sql"] = Field(
        description="counts: the aggregator's live counts in Redis; sql: counted in Postgres "
        "(Redis down or slow, or no counts for the scope yet)"
    )


class ApiKeyIn(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "ingest job", "role": "operator"}]}
    )

    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "operator", "viewer"]
    tenant_id: uuid.UUID | None = Field(None, description="superusers only: the tenant")


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    created_by: uuid.UUID
    name: str
    role: str
    prefix: str = Field(description="the first characters of the secret, to recognise it")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="shown once: send it as 'Authorization: Bearer <secret>'")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class UserList(BaseModel):
    items: list[UserOut]


class AuditOut(BaseModel):
    id: int
    tenant_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    actor_kind: str
    api_key_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: uuid.UUID
    changes: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None
