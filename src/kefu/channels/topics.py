"""The event types the outbox carries, with their labels (msgids)."""

from __future__ import annotations

from kefu.i18n import N_

TOPICS: dict[str, str] = {
    "ticket.created": N_("Ticket created"),
    "ticket.linked": N_("Ticket served by another unit (linked service)"),
    "ticket.transferred": N_("Ticket transferred"),
    "ticket.reply": N_("Public reply on a ticket"),
    "ticket.resolved": N_("Ticket resolved"),
    "sla.warning": N_("SLA target due soon"),
    "sla.breach": N_("SLA target overdue"),
    "sla.escalated": N_("SLA breach escalated to the parent unit"),
}

# The escalations: what group robots carry unless told otherwise.
ESCALATIONS = frozenset({"sla.breach", "sla.escalated"})


def label(topic: str) -> str:
    return TOPICS.get(topic, topic)
