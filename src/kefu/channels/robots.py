"""Group-chat robots of a unit: WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书).

A robot carries the events of its unit (the unit the event's recipient belongs to: the
unit head's unit for a breach, the parent unit for an escalation 上报, the handling unit for
a customer's event) whose types it chose, as a markdown card in the robot's language (the
unit's chat language).

Formats (each answers HTTP 200 with an error code in JSON; code 0 is delivered):
- WeCom: POST the webhook URL with {"msgtype": "markdown", "markdown": {"content"}}; the
  key is part of the URL. Rate limited (errcode 45009: retried).
- DingTalk: {"msgtype": "markdown", "markdown": {"title", "text"}}; with 加签 the URL gets
  `timestamp` (ms) and `sign` = Base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)).
  130101 (too fast) is retried.
- Feishu: {"msg_type": "interactive", "card": {header, elements: [markdown]}} with
  `timestamp` (s) and `sign` = Base64(HMAC-SHA256(key = timestamp + "\\n" + secret, "")).
  9499 and 11232 (rate limited) are retried.
Any other error code goes to the dead letters (a wrong key or secret is not fixed by
waiting).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu import crypto
from kefu.channels import http
from kefu.channels.base import (
    Context,
    Event,
    Job,
    PermanentError,
    Planned,
    PlannedEvent,
    RetryableError,
)
from kefu.channels.models import ChatRobot
from kefu.channels.policy import http_outcome
from kefu.channels.topics import ESCALATIONS, TOPICS
from kefu.config import get_settings
from kefu.i18n import N_, format_datetime, set_locale, translations
from kefu.units.models import Unit

RETRY_CODES = {"wecom": {45009, -1}, "dingtalk": {130101, -1}, "feishu": {9499, 11232}}
TARGET_LABELS = {
    "first_response": N_("First response"),
    "next_response": N_("Next response"),
    "resolution": N_("Resolution"),
}
LABEL_TARGET = N_("Target")
LABEL_DUE = N_("Due")
LABEL_REASON = N_("Reason")
LABEL_UNIT = N_("Unit")
COLOURS = {"sla.warning": "orange", "sla.breach": "red", "sla.escalated": "red"}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_sign(secret: str, timestamp: int) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def card(event: Event, locale: str, unit_name: str, tz: str) -> tuple[str, str]:
    """(title, markdown) of an event in `locale`."""
    t = translations(locale).gettext
    set_locale(locale)  # this thread's formatting locale
    p = event.payload
    title = t(p["title"]) if isinstance(p.get("title"), str) else t(TOPICS.get(event.topic, ""))
    title = title or event.topic
    lines = [f"### {title}"]
    number, subject = p.get("number"), p.get("subject")
    if number or subject:
        lines.append(f"**{number or ''}** {subject or ''}".strip())
    if isinstance(p.get("target"), str) and p["target"] in TARGET_LABELS:
        lines.append(f"> {t(LABEL_TARGET)}: {t(TARGET_LABELS[p['target']])}")
    if isinstance(p.get("due"), str):
        try:
            due = format_datetime(datetime.fromisoformat(p["due"]), tz)
        except ValueError:
            due = p["due"]
        lines.append(f"> {t(LABEL_DUE)}: {due}")
    if isinstance(p.get("reason"), str) and p["reason"]:
        lines.append(f"> {t(LABEL_REASON)}: {p['reason']}")
    lines.append(f"> {t(LABEL_UNIT)}: {unit_name}")
    return title, "\n".join(lines)


def request(
    kind: str, url: str, secret: str | None, title: str, text: str, topic: str
) -> tuple[str, bytes]:
    """(URL, JSON body) of one message in the robot's format."""
    if kind == "wecom":
        doc: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": text}}
    elif kind == "dingtalk":
        doc = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        if secret:
            ts = int(time.time() * 1000)
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={quote_plus(dingtalk_sign(secret, ts))}"
    else:
        doc = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": title},
                    "template": COLOURS.get(topic, "blue"),
                },
                "elements": [{"tag": "markdown", "content": text}],
            },
        }
        if secret:
            ts = int(time.time())
            doc = {"timestamp": str(ts), "sign": feishu_sign(secret, ts), **doc}
    return url, json.dumps(doc, ensure_ascii=False).encode()


class RobotChannel:
    name = "robot"
    audiences: frozenset[str] = frozenset()
    default_topics: frozenset[str] | None = ESCALATIONS

    def plan(self, session: Session, events: Sequence[PlannedEvent]) -> Iterable[Planned]:
        units = {pe.unit_id for pe in events if pe.unit_id is not None}
        if not units:
            return
        robots = session.execute(
            select(ChatRobot.id, ChatRobot.unit_id, ChatRobot.topics).where(
                ChatRobot.unit_id.in_(units), ChatRobot.is_active.is_(True)
            )
        ).all()
        for pe in events:
            for robot_id, unit_id, topics in robots:
                if unit_id == pe.unit_id and pe.event.topic in topics:
                    yield Planned(pe.event.id, f"robot:{robot_id}")

    def prepare(self, session: Session, jobs: Sequence[Job]) -> dict[str, Any]:
        ids = {int(j.target.split(":", 1)[1]) for j in jobs}
        rows = session.execute(
            select(ChatRobot, Unit.name, Unit.timezone)
            .join(Unit, Unit.id == ChatRobot.unit_id)
            .where(ChatRobot.id.in_(ids))
        ).all()
        return {
            f"robot:{r.id}": {
                "kind": r.kind,
                "url": r.url,
                "secret": r.secret,
                "locale": r.locale,
                "active": r.is_active,
                "unit": name,
                "tz": tz,
            }
            for r, name, tz in rows
        }

    def deliver(self, job: Job, ctx: Context) -> str:
        robot = ctx.extra.get(job.target)
        if robot is None:
            raise PermanentError("the robot was deleted")
        if not robot["active"]:
            raise PermanentError("the robot is disabled")
        secret = (
            crypto.decrypt(robot["secret"], crypto.INTEGRATION_SECRET) if robot["secret"] else None
        )
        title, text = card(job.event, robot["locale"], robot["unit"], robot["tz"])
        url, body = request(robot["kind"], robot["url"], secret, title, text, job.event.topic)
        settings = get_settings()
        answer = http.post(
            url,
            body,
            {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Kefu-Robots/1"},
            timeout=settings.webhook_timeout_seconds,
            max_response=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private_targets,
            deadline=ctx.deadline,
        )
        outcome = http_outcome(answer.status)
        if outcome != "ok":
            note = f"HTTP {answer.status}"
            raise (RetryableError(note) if outcome == "retry" else PermanentError(note))
        try:
            reply = json.loads(answer.body or b"{}")
        except ValueError as exc:
            raise RetryableError("the answer is not JSON") from exc
        code = reply.get("errcode", reply.get("code", reply.get("StatusCode", 0)))
        message = str(reply.get("errmsg", reply.get("msg", "")))[:200]
        if code in (0, None):
            return "ok"
        note = f"error {code}: {message}"
        if code in RETRY_CODES[robot["kind"]]:
            raise RetryableError(note)
        raise PermanentError(note)


channel = RobotChannel()
