"""Outbound webhooks per tenant (admins). The secret is returned once, at creation."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from lookout_api.entrypoints.deps import CheckedPrincipalDep, DepsDep, PrincipalDep
from lookout_api.entrypoints.problems import COMMON, problems
from lookout_api.entrypoints.webhook_schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from lookout_api.handlers import webhooks

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=COMMON)


@router.post(
    "", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED, responses=problems(422)
)
async def create_webhook(deps: DepsDep, principal: PrincipalDep, body: WebhookIn) -> WebhookCreated:
    row, secret = await webhooks.create_webhook(
        deps, principal, body.url, body.events, body.secret, body.tenant_id
    )
    return WebhookCreated(**dict(row), secret=secret)


@router.get("", response_model=WebhookList)
async def list_webhooks(
    deps: DepsDep, principal: CheckedPrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> WebhookList:
    rows = await webhooks.list_webhooks(deps, principal, limit)
    return WebhookList(items=[WebhookOut(**dict(r)) for r in rows])


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_webhook(deps: DepsDep, principal: PrincipalDep, webhook_id: uuid.UUID) -> Response:
    await webhooks.delete_webhook(deps, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/test", response_model=DeliveryOut, status_code=202)
async def test_webhook(
    deps: DepsDep, principal: PrincipalDep, webhook_id: uuid.UUID
) -> DeliveryOut:
    return DeliveryOut(**dict(await webhooks.test_fire(deps, principal, webhook_id)))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    deps: DepsDep,
    principal: CheckedPrincipalDep,
    webhook_id: uuid.UUID,
    status: Literal["failed", "replay", "sending", "delivered"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryList:
    rows = await webhooks.list_deliveries(deps, principal, webhook_id, status, limit)
    return DeliveryList(items=[DeliveryOut(**dict(r)) for r in rows])


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay", response_model=DeliveryOut, status_code=202
)
async def replay_delivery(
    deps: DepsDep, principal: PrincipalDep, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryOut:
    return DeliveryOut(**dict(await webhooks.replay(deps, principal, webhook_id, delivery_id)))
