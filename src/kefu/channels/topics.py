"""The event types the outbox carries, with their labels (msgids)."""

from __future__ import annotations

from typing import Any

from kefu.i18n import N_, gettext

TOPICS: dict[str, str] = {
    "ticket.created": N_("Ticket created"),
    "ticket.acknowledged": N_("New ticket acknowledged to the customer"),
    "ticket.linked": N_("Ticket served by another unit (linked service)"),
    "ticket.transferred": N_("Ticket transferred"),
    "ticket.assigned": N_("Ticket assigned to you"),
    "ticket.reply": N_("Public reply on a ticket"),
    "ticket.updated": N_("Ticket changed (state, priority, subject, tags, fields)"),
    "ticket.resolved": N_("Ticket resolved"),
    "sla.warning": N_("SLA target due soon"),
    "sla.breach": N_("SLA target overdue"),
    "sla.escalated": N_("SLA breach escalated to the parent unit"),
    "survey.answered": N_("Survey answered"),
    "tier.changed": N_("Customer tier, service level or owning unit changed"),
    "recovery.opened": N_("Recovery task opened after a low satisfaction result"),
    "visit.attention": N_("Return visit needs attention"),
    "visit.overdue": N_("Return visit overdue"),
}

# Too frequent for the bell by default (integrations want them; people may opt in).
QUIET = frozenset({"ticket.updated", "tier.changed"})
# The escalations: what group robots carry unless told otherwise.
ESCALATIONS = frozenset({"sla.breach", "sla.escalated"})


def label(topic: str) -> str:
    return TOPICS.get(topic, topic)


def notice_title(topic: str, payload: dict[str, Any]) -> str:
    """A notice's title in the current language: the event's own title (SLA steps carry
    one), else the type's label; with the ticket number when there is one."""
    title = payload.get("title")
    msgid = title if isinstance(title, str) else label(topic)
    text = gettext(msgid)
    number = payload.get("number")
    return f"{number} · {text}" if isinstance(number, str) and number else text
