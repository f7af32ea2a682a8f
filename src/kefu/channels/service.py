"""Actions on channels: webhook subscriptions, group robots, dead letters, notices and
preferences. Services flush, never commit; every change writes its audit row."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kefu import crypto
from kefu.audit.service import record
from kefu.channels import http
from kefu.channels.base import channels, default_on
from kefu.channels.models import (
    ChatRobot,
    Delivery,
    DeliveryAttempt,
    Notice,
    NotificationPreference,
    WebhookSubscription,
)
from kefu.channels.schemas import (
    PreferenceIn,
    RobotIn,
    RobotUpdate,
    WebhookIn,
    WebhookUpdate,
)
from kefu.channels.topics import TOPICS
from kefu.clock import now
from kefu.config import get_settings
from kefu.errors import Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.notifications.models import OutboxMessage
from kefu.scope import Viewer, get_visible, visible
from kefu.units.models import Unit

ALL = "*"


def _admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden()


def _check_url(url: str) -> str:
    try:
        http.check_url(url, get_settings().webhook_allow_private_targets)
    except http.UnsafeTarget as exc:
        if "http" in str(exc) and "only" in str(exc):
            raise Invalid.field("url", N_("Only http and https URLs are accepted.")) from exc
        raise Invalid.field(
            "url", N_("The URL points inside the network; that is not allowed here.")
        ) from exc
    return url.strip()


def _check_topics(topics: Sequence[str], allow_all: bool = True) -> list[str]:
    known = set(TOPICS) | ({ALL} if allow_all else set())
    unknown = [t for t in topics if t not in known]
    if unknown:
        raise Invalid.field("topics", N_("Unknown event type: {topic}."), topic=unknown[0])
    return list(dict.fromkeys(topics))


# --- webhooks --------------------------------------------------------------------------------


def list_webhooks(session: Session, viewer: Viewer) -> list[WebhookSubscription]:
    _admin(viewer)
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def get_webhook(session: Session, viewer: Viewer, webhook_id: int) -> WebhookSubscription:
    _admin(viewer)
    sub = session.get(WebhookSubscription, webhook_id)
    if sub is None:
        raise NotFound()
    return sub


def webhook_secret(sub: WebhookSubscription) -> str:
    return crypto.decrypt(sub.secret, crypto.INTEGRATION_SECRET)


def create_webhook(
    session: Session, viewer: Viewer, data: WebhookIn
) -> tuple[WebhookSubscription, str]:
    """A subscription and its signing secret (returned in clear, stored sealed)."""
    _admin(viewer)
    secret = "whsec_" + secrets.token_urlsafe(32)
    sub = WebhookSubscription(
        name=data.name.strip(),
        url=_check_url(data.url),
        topics=_check_topics(data.topics),
        secret=crypto.encrypt(secret, crypto.INTEGRATION_SECRET),
        is_active=data.is_active,
        created_by=viewer.username,
        created_at=now(),
        updated_at=now(),
    )
    session.add(sub)
    session.flush()
    record(
        session,
        viewer,
        "webhook.create",
        "webhook",
        sub.id,
        {k: {"before": None, "after": getattr(sub, k)} for k in ("name", "url", "topics")},
    )
    return sub, secret


def update_webhook(
    session: Session, viewer: Viewer, webhook_id: int, data: WebhookUpdate
) -> WebhookSubscription:
    sub = get_webhook(session, viewer, webhook_id)
    fields = data.model_dump(exclude_unset=True)
    if fields.get("url") is not None:
        fields["url"] = _check_url(fields["url"])
    if fields.get("topics") is not None:
        fields["topics"] = _check_topics(fields["topics"])
    changes: dict[str, Any] = {}
    for name, value in fields.items():
        if value is not None and value != getattr(sub, name):
            changes[name] = {"before": getattr(sub, name), "after": value}
            setattr(sub, name, value)
    if changes:
        sub.updated_at = now()
        record(session, viewer, "webhook.update", "webhook", sub.id, changes)
    session.flush()
    return sub


def rotate_webhook_secret(session: Session, viewer: Viewer, webhook_id: int) -> str:
    sub = get_webhook(session, viewer, webhook_id)
    secret = "whsec_" + secrets.token_urlsafe(32)
    sub.secret = crypto.encrypt(secret, crypto.INTEGRATION_SECRET)
    sub.updated_at = now()
    record(session, viewer, "webhook.rotate_secret", "webhook", sub.id, {})
    session.flush()
    return secret


def delete_webhook(session: Session, viewer: Viewer, webhook_id: int) -> None:
    sub = get_webhook(session, viewer, webhook_id)
    record(
        session,
        viewer,
        "webhook.delete",
        "webhook",
        sub.id,
        {"url": {"before": sub.url, "after": None}},
    )
    session.delete(sub)
    session.flush()


# --- deliveries: the log and the dead letters ------------------------------------------------


def list_deliveries(
    session: Session,
    viewer: Viewer,
    *,
    status: str | None = None,
    channel: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """Newest first; `before_id` pages."""
    _admin(viewer)
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if target:
        stmt = stmt.where(Delivery.target == target)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    if before_id:
        stmt = stmt.where(Delivery.id < before_id)
    return list(session.scalars(stmt))


def delivery_counts(session: Session, viewer: Viewer) -> dict[str, int]:
    _admin(viewer)
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: n for status, n in rows}


def get_delivery(session: Session, viewer: Viewer, delivery_id: int) -> Delivery:
    _admin(viewer)
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise NotFound()
    return row


def delivery_attempts(session: Session, viewer: Viewer, delivery_id: int) -> list[DeliveryAttempt]:
    get_delivery(session, viewer, delivery_id)
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
    )


def delivery_event(session: Session, viewer: Viewer, delivery_id: int) -> OutboxMessage | None:
    row = get_delivery(session, viewer, delivery_id)
    return session.get(OutboxMessage, row.outbox_id)


def retry_delivery(session: Session, viewer: Viewer, delivery_id: int) -> Delivery:
    """A dead letter back to the queue, with a fresh count of attempts."""
    row = get_delivery(session, viewer, delivery_id)
    if row.status != "dead":
        raise Invalid.field("status", N_("Only dead letters can be retried."))
    at = now()
    session.add(
        DeliveryAttempt(
            delivery_id=row.id,
            attempt=row.attempts,
            at=at,
            duration_ms=0,
            outcome="manual",
            detail=f"retried by {viewer.username}",
        )
    )
    record(
        session,
        viewer,
        "delivery.retry",
        "delivery",
        row.id,
        {"status": {"before": "dead", "after": "pending"}},
    )
    row.status = "pending"
    row.attempts = 0
    row.claim = None
    row.next_attempt_at = at
    session.flush()
    return row


# --- in-app notices and preferences ------------------------------------------------------------


def _self(viewer: Viewer) -> int:
    if viewer.staff_id is None:
        raise Forbidden()
    return viewer.staff_id


def unread_count(session: Session, viewer: Viewer) -> int:
    if viewer.staff_id is None:
        return 0
    return (
        session.scalar(
            select(func.count())
            .select_from(Notice)
            .where(Notice.staff_id == viewer.staff_id, Notice.read_at.is_(None))
        )
        or 0
    )


def list_notices(
    session: Session,
    viewer: Viewer,
    *,
    unread: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Notice]:
    """The viewer's own notices, newest first."""
    stmt = (
        select(Notice)
        .where(Notice.staff_id == _self(viewer))
        .order_by(Notice.id.desc())
        .limit(limit)
    )
    if unread:
        stmt = stmt.where(Notice.read_at.is_(None))
    if before_id:
        stmt = stmt.where(Notice.id < before_id)
    return list(session.scalars(stmt))


def mark_read(session: Session, viewer: Viewer, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None or notice.staff_id != _self(viewer):
        raise NotFound()
    if notice.read_at is None:
        notice.read_at = now()
        session.flush()
    return notice


def mark_all_read(session: Session, viewer: Viewer) -> int:
    result = session.execute(
        update(Notice)
        .where(Notice.staff_id == _self(viewer), Notice.read_at.is_(None))
        .values(read_at=now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def preferences(session: Session, viewer: Viewer) -> list[tuple[str, str, bool, bool]]:
    """(topic, channel, enabled, default) for every event type and staff channel."""
    staff_id = _self(viewer)
    stored = {
        (p.topic, p.channel): p.enabled
        for p in session.scalars(
            select(NotificationPreference).where(NotificationPreference.staff_id == staff_id)
        )
    }
    out = []
    for topic in TOPICS:
        for name, ch in sorted(channels().items()):
            if "staff" not in ch.audiences:
                continue
            default = default_on(ch, topic)
            out.append((topic, name, stored.get((topic, name), default), default))
    return out


def set_preferences(session: Session, viewer: Viewer, choices: Sequence[PreferenceIn]) -> None:
    """Store the viewer's choices (a choice equal to the default is stored too: explicit)."""
    staff_id = _self(viewer)
    registry = channels()
    changes: dict[str, Any] = {}
    for c in choices:
        ch = registry.get(c.channel)
        if ch is None or "staff" not in ch.audiences:
            raise Invalid.field("channel", N_("Unknown channel: {channel}."), channel=c.channel)
        _check_topics([c.topic], allow_all=False)
        row = session.get(NotificationPreference, (staff_id, c.topic, c.channel))
        before = row.enabled if row else default_on(ch, c.topic)
        if row is None:
            session.add(
                NotificationPreference(
                    staff_id=staff_id, topic=c.topic, channel=c.channel, enabled=c.enabled
                )
            )
        else:
            row.enabled = c.enabled
        if before != c.enabled:
            changes[f"{c.topic}/{c.channel}"] = {"before": before, "after": c.enabled}
    if changes:
        record(session, viewer, "notifications.preferences", "staff", staff_id, changes)
    session.flush()


# --- group robots ----------------------------------------------------------------------------


def _robot_unit(session: Session, viewer: Viewer, unit_id: int) -> Unit:
    try:
        return get_visible(session, Unit, unit_id, viewer)
    except NotFound as exc:
        raise Invalid.field("unit_id", N_("No such unit.")) from exc


def _manage_robots(viewer: Viewer) -> None:
    if not viewer.has_role("manager", "supervisor"):
        raise Forbidden()


def list_robots(
    session: Session,
    viewer: Viewer,
    *,
    unit_id: int | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[ChatRobot]:
    """The robots of the viewer's subtree, by id."""
    stmt = visible(select(ChatRobot), ChatRobot, viewer).order_by(ChatRobot.id)
    if unit_id is not None:
        stmt = stmt.where(ChatRobot.unit_id == unit_id)
    if after_id is not None:
        stmt = stmt.where(ChatRobot.id > after_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_robot(session: Session, viewer: Viewer, robot_id: int) -> ChatRobot:
    return get_visible(session, ChatRobot, robot_id, viewer)


def _robot_secret(kind: str, secret: str | None) -> str | None:
    if kind in ("dingtalk", "feishu") and not secret:
        raise Invalid.field("secret", N_("DingTalk and Feishu robots need their signing secret."))
    return crypto.encrypt(secret, crypto.INTEGRATION_SECRET) if secret else None


def create_robot(session: Session, viewer: Viewer, data: RobotIn) -> ChatRobot:
    _manage_robots(viewer)
    unit = _robot_unit(session, viewer, data.unit_id)
    robot = ChatRobot(
        unit_id=unit.id,
        kind=data.kind,
        name=data.name.strip(),
        url=_check_url(data.url),
        secret=_robot_secret(data.kind, data.secret),
        topics=_check_topics(data.topics, allow_all=False),
        locale=data.locale,
        is_active=data.is_active,
        created_by=viewer.username,
        created_at=now(),
        updated_at=now(),
    )
    session.add(robot)
    session.flush()
    record(
        session,
        viewer,
        "robot.create",
        "robot",
        robot.id,
        {
            k: {"before": None, "after": getattr(robot, k)}
            for k in ("unit_id", "kind", "url", "topics")
        },
    )
    return robot


def update_robot(session: Session, viewer: Viewer, robot_id: int, data: RobotUpdate) -> ChatRobot:
    robot = get_robot(session, viewer, robot_id)
    _manage_robots(viewer)
    fields = data.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    secret = fields.pop("secret", None)
    if secret:
        robot.secret = crypto.encrypt(secret, crypto.INTEGRATION_SECRET)
        changes["secret"] = {"before": "…", "after": "…"}
    if fields.get("url") is not None:
        fields["url"] = _check_url(fields["url"])
    if fields.get("topics") is not None:
        fields["topics"] = _check_topics(fields["topics"], allow_all=False)
    for name, value in fields.items():
        if value is not None and value != getattr(robot, name):
            changes[name] = {"before": getattr(robot, name), "after": value}
            setattr(robot, name, value)
    if changes:
        robot.updated_at = now()
        record(session, viewer, "robot.update", "robot", robot.id, changes)
    session.flush()
    return robot


def delete_robot(session: Session, viewer: Viewer, robot_id: int) -> None:
    robot = get_robot(session, viewer, robot_id)
    _manage_robots(viewer)
    record(
        session,
        viewer,
        "robot.delete",
        "robot",
        robot.id,
        {"url": {"before": robot.url, "after": None}},
    )
    session.delete(robot)
    session.flush()


def robot_secret(robot: ChatRobot) -> str | None:
    return crypto.decrypt(robot.secret, crypto.INTEGRATION_SECRET) if robot.secret else None
