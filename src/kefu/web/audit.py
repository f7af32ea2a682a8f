"""The audit log (administrators): filters, cursor pages, before/after of each change."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kefu.audit.models import AuditEntry
from kefu.audit.queries import audit_entries
from kefu.errors import FieldError
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.web.common import CurrentMe, Db, Form, render, url_with

router = APIRouter()

PAGE_SIZE = 50
NOT_A_DATE = N_("Must be a date (YYYY-MM-DD).")
# Readable names of actions; an action not listed shows its code. Capabilities add theirs.
ACTIONS = {
    "auth.login": N_("Signed in"),
    "unit.create": N_("Unit created"),
    "unit.update": N_("Unit changed"),
    "staff.create": N_("Staff member created"),
    "staff.update": N_("Staff member changed"),
    "token.create": N_("API token created"),
    "token.revoke": N_("API token revoked"),
    "customer.create": N_("Customer created"),
    "customer.update": N_("Customer changed"),
    "customer.import": N_("File imported"),
    "customer.import_create": N_("Customer created by an import"),
    "customer.import_update": N_("Customer changed by an import"),
    "customer.pin": N_("Tier pinned"),
    "customer.unpin": N_("Tier pin removed"),
    "contact.create": N_("Contact added"),
    "contact.update": N_("Contact changed"),
    "contact.delete": N_("Contact deleted"),
    "contact.import_create": N_("Contact added by an import"),
    "contact.import_update": N_("Contact changed by an import"),
    "revenue.create": N_("Revenue recorded"),
    "revenue.import_create": N_("Revenue recorded by an import"),
    "revenue.import_update": N_("Revenue changed by an import"),
    "tiering.ruleset": N_("Tiering rules changed"),
    "tiering.run": N_("Tiering run"),
    "tiering.apply": N_("Tiering run applied"),
    "service_level.update": N_("Service level changed"),
    "ticket.create": N_("Ticket created"),
    "ticket.state": N_("Ticket state changed"),
    "ticket.update": N_("Ticket changed"),
    "ticket.transfer": N_("Ticket transferred"),
    "ticket.attachment": N_("Attachment added to a ticket"),
    "webhook.create": N_("Webhook created"),
    "webhook.update": N_("Webhook changed"),
    "webhook.rotate_secret": N_("Webhook secret replaced"),
    "webhook.delete": N_("Webhook deleted"),
    "robot.create": N_("Group robot added"),
    "robot.update": N_("Group robot changed"),
    "robot.delete": N_("Group robot deleted"),
    "delivery.retry": N_("Dead letter retried"),
    "notifications.preferences": N_("Notification preferences changed"),
}
# Where an object of each type is shown.
OBJECT_URLS = {
    "unit": "/units/{id}",
    "staff": "/staff/{id}",
    "api_token": "/tokens",
    "customer": "/customers/{id}",
    "ticket": "/tickets/{id}",
    "service_level": "/service-levels/{id}",
    "tiering_run": "/tiering/runs/{id}",
    "webhook": "/webhooks/{id}",
    "robot": "/robots/{id}",
    "delivery": "/deliveries/{id}",
}


def _day(value: str, field: str, errors: list[FieldError]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(field, NOT_A_DATE))
        return None


def _start(day: date, tz: str) -> datetime:
    """The first instant of `day` in the viewer's zone."""
    return datetime.combine(day, time.min, ZoneInfo(tz))


def shown(value: Any) -> str:
    """A changed value, compactly."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    return str(value)


@router.get("/audit")
def audit_page(
    request: Request,
    me: CurrentMe,
    db: Db,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
) -> Response:
    values = {
        "actor": actor.strip()[:64],
        "action": action.strip()[:64],
        "object_type": object_type.strip()[:40],
        "object_id": object_id.strip()[:64],
        "since": since,
        "until": until,
    }
    errors: list[FieldError] = []
    first, last = _day(since, "since", errors), _day(until, "until", errors)
    stmt = audit_entries(  # not an admin: NotFound
        me.viewer,
        actor=values["actor"] or None,
        action=values["action"] or None,
        object_type=values["object_type"] or None,
        object_id=values["object_id"] or None,
        since=_start(first, me.tz) if first else None,
        until=_start(last + timedelta(days=1), me.tz) if last else None,  # the whole last day
    )
    page = (
        None
        if errors
        else paginate(
            db, stmt, key=AuditEntry.id, limit=PAGE_SIZE, cursor=cursor or None, descending=True
        )
    )
    return render(
        request,
        "audit/list.html",
        {
            "filters": Form(values, errors, key="filter"),
            "entries": page.items if page else [],
            "actions": ACTIONS,
            "object_urls": OBJECT_URLS,
            "shown": shown,
            "next_url": url_with(request, cursor=page.next_cursor)
            if page and page.next_cursor
            else None,
            "first_url": url_with(request, cursor=None) if cursor else None,
        },
        status=422 if errors else 200,
    )
