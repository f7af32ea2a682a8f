"""Notices (the bell, the list, preferences) for everyone; webhooks and the delivery log
for administrators; group robots for managers and supervisors of their subtree."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kefu.channels import service
from kefu.channels.base import channels
from kefu.channels.schemas import PreferenceIn, RobotIn, RobotUpdate, WebhookIn, WebhookUpdate
from kefu.channels.topics import TOPICS, notice_title
from kefu.errors import Invalid
from kefu.i18n import N_
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    parse,
    redirect,
    render,
    require_role,
    text,
)
from kefu.web.units import visible_tree

router = APIRouter()

PAGE = 50
CHANNEL_LABELS = {
    "inapp": N_("In-app"),
    "email": N_("Email"),
    "webhook": N_("Webhook"),
    "robot": N_("Group robot"),
}
ROBOT_KINDS = [
    ("wecom", N_("WeCom (企业微信)")),
    ("dingtalk", N_("DingTalk (钉钉)")),
    ("feishu", N_("Feishu (飞书)")),
]
ROBOT_LOCALES = [("zh_CN", N_("Chinese")), ("en", N_("English"))]
STATUSES = [
    ("dead", N_("Dead letters")),
    ("pending", N_("Waiting")),
    ("delivered", N_("Delivered")),
    ("", N_("All")),
]
TOPIC_OPTIONS = list(TOPICS.items())


def _cursor(request: Request) -> int | None:
    value = request.query_params.get("cursor", "")
    return int(value) if value.isdigit() else None


# --- notices -----------------------------------------------------------------------------------


@router.get("/notices/bell")
def bell(request: Request, me: CurrentMe, db: Db) -> Response:
    return render(
        request,
        "notices/_bell.html",
        {"unread": service.unread_count(db, me.viewer)},
        fragment="bell",
    )


@router.get("/notices")
def notices_page(request: Request, me: CurrentMe, db: Db) -> Response:
    unread = request.query_params.get("unread") == "1"
    rows = service.list_notices(
        db, me.viewer, unread=unread, before_id=_cursor(request), limit=PAGE + 1
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    items = [(n, notice_title(n.topic, n.payload)) for n in rows]
    next_url = None
    if more and rows:
        next_url = f"/notices?cursor={rows[-1].id}" + ("&unread=1" if unread else "")
    return render(
        request,
        "notices/list.html",
        {
            "items": items,
            "unread_only": unread,
            "unread": service.unread_count(db, me.viewer),
            "next_url": next_url,
        },
        fragment="results",
    )


@router.post("/notices/read-all")
def read_all(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    service.mark_all_read(db, me.viewer)
    return redirect(request, "/notices", "saved")


@router.post("/notices/{notice_id}/read")
def read_one(notice_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    notice = service.mark_read(db, me.viewer, notice_id)
    ticket_id = notice.payload.get("ticket_id")
    if text(form, "open") and isinstance(ticket_id, int):
        return redirect(request, f"/tickets/{ticket_id}")
    return redirect(request, "/notices")


def _prefs_page(request: Request, db: Session, me: Me, status: int = 200) -> Response:
    rows = service.preferences(db, me.viewer)
    names = sorted({c for _, c, _, _ in rows})
    grid = {(t, c): (e, d) for t, c, e, d in rows}
    return render(
        request,
        "notices/preferences.html",
        {"topics": TOPIC_OPTIONS, "names": names, "grid": grid, "labels": CHANNEL_LABELS},
        status=status,
    )


@router.get("/notices/preferences")
def preferences_page(request: Request, me: CurrentMe, db: Db) -> Response:
    return _prefs_page(request, db, me)


@router.post("/notices/preferences")
def save_preferences(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    chosen = {v for v in form.getlist("on") if isinstance(v, str)}
    choices = [
        PreferenceIn(topic=t, channel=c, enabled=f"{t}|{c}" in chosen)
        for t, c, _, _ in service.preferences(db, me.viewer)
    ]
    service.set_preferences(db, me.viewer, choices)
    return redirect(request, "/notices/preferences", "saved")


# --- webhooks (administrators) ----------------------------------------------------------------


def _webhook_values(form: Any) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "url": text(form, "url").strip(),
        "topics": [v for v in form.getlist("topics") if isinstance(v, str)],
        "is_active": text(form, "is_active") == "1",
    }


def _webhooks_page(
    request: Request, db: Session, me: Me, form: Form | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "channels/webhooks.html",
        {
            "subs": service.list_webhooks(db, me.viewer),
            "form": form or Form({"name": "", "url": "", "topics": [], "is_active": True}),
            "topic_options": [("*", N_("Every event type")), *TOPIC_OPTIONS],
        },
        status=status,
    )


@router.get("/webhooks")
def webhooks_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _webhooks_page(request, db, me)


@router.post("/webhooks")
def create_webhook(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = _webhook_values(form)
    values["is_active"] = True
    try:
        sub, _secret = service.create_webhook(db, me.viewer, parse(WebhookIn, values))
    except Invalid as exc:
        return _webhooks_page(request, db, me, Form(values, exc.errors), status=422)
    return redirect(request, f"/webhooks/{sub.id}", "created")


def _webhook_page(
    request: Request, db: Session, me: Me, webhook_id: int, form: Form | None = None, **extra: Any
) -> Response:
    sub = service.get_webhook(db, me.viewer, webhook_id)
    values = {"name": sub.name, "url": sub.url, "topics": sub.topics, "is_active": sub.is_active}
    return render(
        request,
        "channels/webhook.html",
        {
            "sub": sub,
            "secret": service.webhook_secret(sub),
            "form": form or Form(values),
            "topic_options": [("*", N_("Every event type")), *TOPIC_OPTIONS],
            "deliveries": service.list_deliveries(
                db, me.viewer, channel="webhook", target=f"webhook:{sub.id}", limit=20
            ),
        },
        status=extra.get("status", 200),
    )


@router.get("/webhooks/{webhook_id}")
def webhook_page(webhook_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _webhook_page(request, db, me, webhook_id)


@router.post("/webhooks/{webhook_id}")
def update_webhook(
    webhook_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    values = _webhook_values(form)
    try:
        service.update_webhook(db, me.viewer, webhook_id, parse(WebhookUpdate, values))
    except Invalid as exc:
        return _webhook_page(request, db, me, webhook_id, Form(values, exc.errors), status=422)
    return redirect(request, f"/webhooks/{webhook_id}", "saved")


@router.post("/webhooks/{webhook_id}/rotate")
def rotate_secret(
    webhook_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    service.rotate_webhook_secret(db, me.viewer, webhook_id)
    return redirect(request, f"/webhooks/{webhook_id}", "saved")


@router.post("/webhooks/{webhook_id}/delete")
def delete_webhook(
    webhook_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    service.delete_webhook(db, me.viewer, webhook_id)
    return redirect(request, "/webhooks", "saved")


# --- the delivery log and dead letters (administrators) ----------------------------------------


@router.get("/deliveries")
def deliveries_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    status = request.query_params.get("status", "dead")
    status = status if status in {s for s, _ in STATUSES} else "dead"
    channel = request.query_params.get("channel", "")
    channel = channel if channel in channels() else ""
    rows = service.list_deliveries(
        db,
        me.viewer,
        status=status or None,
        channel=channel or None,
        before_id=_cursor(request),
        limit=PAGE + 1,
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_url = None
    if more and rows:
        next_url = f"/deliveries?status={status}&channel={channel}&cursor={rows[-1].id}"
    return render(
        request,
        "channels/deliveries.html",
        {
            "rows": rows,
            "status": status,
            "channel": channel,
            "statuses": STATUSES,
            "channel_names": sorted(channels()),
            "labels": CHANNEL_LABELS,
            "counts": service.delivery_counts(db, me.viewer),
            "next_url": next_url,
        },
        fragment="results",
    )


@router.get("/deliveries/{delivery_id}")
def delivery_page(delivery_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    row = service.get_delivery(db, me.viewer, delivery_id)
    return render(
        request,
        "channels/delivery.html",
        {
            "row": row,
            "attempts": service.delivery_attempts(db, me.viewer, delivery_id),
            "event": service.delivery_event(db, me.viewer, delivery_id),
            "labels": CHANNEL_LABELS,
        },
    )


@router.post("/deliveries/{delivery_id}/retry")
def retry_delivery(
    delivery_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    service.retry_delivery(db, me.viewer, delivery_id)
    back = text(form, "next")
    return redirect(request, back if back.startswith("/deliveries") else "/deliveries", "saved")


# --- group robots (managers, supervisors; admins everywhere) -----------------------------------


def _robot_values(form: Any) -> dict[str, Any]:
    return {
        "unit_id": text(form, "unit_id"),
        "kind": text(form, "kind"),
        "name": text(form, "name"),
        "url": text(form, "url").strip(),
        "secret": text(form, "secret") or None,
        "topics": [v for v in form.getlist("topics") if isinstance(v, str)],
        "locale": text(form, "locale") or "zh_CN",
        "is_active": text(form, "is_active") == "1",
    }


def _robots_page(
    request: Request, db: Session, me: Me, form: Form | None = None, status: int = 200
) -> Response:
    tree = visible_tree(db, me)
    return render(
        request,
        "channels/robots.html",
        {
            "robots": service.list_robots(db, me.viewer),
            "units": tree.by_id,
            "unit_choices": tree.choices(active_only=True),
            "form": form
            or Form(
                {
                    "unit_id": me.unit_id,
                    "kind": "wecom",
                    "topics": ["sla.breach", "sla.escalated"],
                    "locale": "zh_CN",
                }
            ),
            "kinds": ROBOT_KINDS,
            "locales": ROBOT_LOCALES,
            "topic_options": TOPIC_OPTIONS,
        },
        status=status,
    )


@router.get("/robots")
def robots_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "manager", "supervisor")
    return _robots_page(request, db, me)


@router.post("/robots")
def create_robot(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "manager", "supervisor")
    values = _robot_values(form)
    values["is_active"] = True
    try:
        robot = service.create_robot(db, me.viewer, parse(RobotIn, values))
    except Invalid as exc:
        values["secret"] = ""
        return _robots_page(request, db, me, Form(values, exc.errors), status=422)
    return redirect(request, f"/robots/{robot.id}", "created")


def _robot_page(
    request: Request, db: Session, me: Me, robot_id: int, form: Form | None = None, **extra: Any
) -> Response:
    robot = service.get_robot(db, me.viewer, robot_id)
    values = {
        "name": robot.name,
        "url": robot.url,
        "topics": robot.topics,
        "locale": robot.locale,
        "is_active": robot.is_active,
        "secret": "",
    }
    tree = visible_tree(db, me)
    return render(
        request,
        "channels/robot.html",
        {
            "robot": robot,
            "unit": tree.by_id.get(robot.unit_id),
            "form": form or Form(values),
            "kinds": dict(ROBOT_KINDS),
            "locales": ROBOT_LOCALES,
            "topic_options": TOPIC_OPTIONS,
        },
        status=extra.get("status", 200),
    )


@router.get("/robots/{robot_id}")
def robot_page(robot_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "manager", "supervisor")
    return _robot_page(request, db, me, robot_id)


@router.post("/robots/{robot_id}")
def update_robot(
    robot_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "manager", "supervisor")
    values = _robot_values(form)
    values.pop("unit_id")
    values.pop("kind")
    try:
        service.update_robot(db, me.viewer, robot_id, parse(RobotUpdate, values))
    except Invalid as exc:
        values["secret"] = ""
        return _robot_page(request, db, me, robot_id, Form(values, exc.errors), status=422)
    return redirect(request, f"/robots/{robot_id}", "saved")


@router.post("/robots/{robot_id}/delete")
def delete_robot(
    robot_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "manager", "supervisor")
    service.delete_robot(db, me.viewer, robot_id)
    return redirect(request, "/robots", "saved")
