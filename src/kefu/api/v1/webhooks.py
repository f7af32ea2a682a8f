"""Webhook subscriptions, the delivery log and dead letters (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from kefu.api.v1.common import IdempotencyKey, PageOut, created, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.channels import service
from kefu.channels.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
deliveries_router = APIRouter(prefix="/deliveries", tags=["webhooks"])


@router.get("", response_model=list[WebhookOut], summary="Webhook subscriptions")
def list_webhooks(viewer: CurrentViewer, db: Db) -> list[WebhookOut]:
    return [WebhookOut.model_validate(s) for s in service.list_webhooks(db, viewer)]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to event types; the answer carries the signing secret",
)
def create_webhook(
    body: WebhookIn,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[WebhookCreated, str]:
        sub, secret = service.create_webhook(db, viewer, body)
        out = WebhookCreated(**WebhookOut.model_validate(sub).model_dump(), secret=secret)
        return out, f"/api/v1/webhooks/{sub.id}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)  # type: ignore[arg-type]


@router.get("/{webhook_id}", response_model=WebhookCreated)
def get_webhook(webhook_id: int, viewer: CurrentViewer, db: Db) -> WebhookCreated:
    sub = service.get_webhook(db, viewer, webhook_id)
    return WebhookCreated(
        **WebhookOut.model_validate(sub).model_dump(), secret=service.webhook_secret(sub)
    )


@router.patch("/{webhook_id}", response_model=WebhookOut)
def update_webhook(
    webhook_id: int, body: WebhookUpdate, viewer: CurrentViewer, db: Db
) -> WebhookOut:
    return WebhookOut.model_validate(service.update_webhook(db, viewer, webhook_id, body))


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    summary="A new signing secret; the old one stops at once",
)
def rotate_secret(webhook_id: int, request: Request, viewer: CurrentViewer, db: Db) -> JSONResponse:
    secret = service.rotate_webhook_secret(db, viewer, webhook_id)
    sub = service.get_webhook(db, viewer, webhook_id)
    out = WebhookCreated(**WebhookOut.model_validate(sub).model_dump(), secret=secret)
    return created(request, out, f"/api/v1/webhooks/{webhook_id}")


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: int, viewer: CurrentViewer, db: Db) -> Response:
    service.delete_webhook(db, viewer, webhook_id)
    return Response(status_code=204)


@deliveries_router.get(
    "",
    response_model=PageOut[DeliveryOut],
    summary="The delivery log, newest first (status=dead: the dead letters)",
)
def list_deliveries(
    viewer: CurrentViewer,
    db: Db,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern="^[0-9]{1,18}$")] = None,
) -> PageOut[DeliveryOut]:
    rows = service.list_deliveries(
        db,
        viewer,
        status=status,
        channel=channel,
        before_id=int(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return PageOut[DeliveryOut](
        items=[DeliveryOut.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


@deliveries_router.get("/{delivery_id}/attempts", response_model=list[AttemptOut])
def list_attempts(delivery_id: int, viewer: CurrentViewer, db: Db) -> list[AttemptOut]:
    return [
        AttemptOut.model_validate(a) for a in service.delivery_attempts(db, viewer, delivery_id)
    ]


@deliveries_router.post(
    "/{delivery_id}/retry", response_model=DeliveryOut, summary="Retry a dead letter"
)
def retry_delivery(delivery_id: int, viewer: CurrentViewer, db: Db) -> DeliveryOut:
    return DeliveryOut.model_validate(service.retry_delivery(db, viewer, delivery_id))
