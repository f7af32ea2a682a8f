from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    literal_column,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.scope import (
    OwnedBySubtree,
    ScopePart,
    Viewer,
    any_part,
    of_contact,
    owned_by_subtree,
)

BigId = BigInteger().with_variant(Integer, "sqlite")
STATES = ("new", "open", "pending", "on_hold", "resolved", "closed")
CHANNELS = ("portal", "email", "api", "phone", "walk_in", "visit")
FIELD_TYPES = ("text", "number", "date", "choice")
PRIORITIES = ("urgent", "high", "normal", "low")


class Category(Base):
    """A service type of the configurable category tree."""

    __tablename__ = "ticket_categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("ticket_categories.code"))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    function: Mapped[str | None] = mapped_column(String(20))  # routed to this function
    is_complaint: Mapped[bool] = mapped_column(default=False)
    onsite: Mapped[bool] = mapped_column(default=False)  # served at the customer's site
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(
            "state IN ('new', 'open', 'pending', 'on_hold', 'resolved', 'closed')", name="state"
        ),
        CheckConstraint("priority IN ('urgent', 'high', 'normal', 'low')", name="priority"),
        CheckConstraint(
            "channel IN ('portal', 'email', 'api', 'phone', 'walk_in', 'visit')", name="channel"
        ),
        # Queues: open tickets of a unit by nearest due time.
        Index("ix_tickets_handling_state_due", "handling_unit_id", "state", "resolution_due"),
        Index("ix_tickets_owning_state", "owning_unit_id", "state"),
        Index("ix_tickets_assignee_state", "assignee_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))
    category_code: Mapped[str] = mapped_column(ForeignKey("ticket_categories.code"))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    site_region_code: Mapped[str | None] = mapped_column(String(12))
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    handling_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(10), default="new")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # SLA facts, kept on the ticket so reports never replay history.
    service_level: Mapped[str | None] = mapped_column(String(4))
    service_level_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_level_versions.id")
    )
    first_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # pending since
    paused_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    business_minutes_used: Mapped[float | None] = mapped_column(Float)
    breached_first_response: Mapped[bool] = mapped_column(default=False)
    breached_resolution: Mapped[bool] = mapped_column(default=False)
    # When to warn the assignee: a share of each target in business time, set whenever the
    # due time is set (kefu.tickets.escalation.warn_instant), so never after it, and moved
    # with it after a pause. The escalation sweep finds due tickets through it.
    first_response_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_response_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Customer replies that started a next-response clock: each cycle has its own ladder.
    next_response_cycle: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How far up the escalation ladder each target went: 0 not yet, 1 assignee warned,
    # 2 unit head told (breach), 3 parent unit told. The sweep's indexes read it.
    first_response_escalation: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default="0"
    )
    next_response_escalation: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default="0"
    )
    resolution_escalation: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # A duplicate merged into another ticket of the same customer: closed, pointing there.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(100))
    # "api:<caller>:<key>" or "email:<message-id>": a retried intake finds its first ticket.
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    __mapper_args__ = {"version_id_col": version}

    collaborators: Mapped[list[TicketCollaborator]] = relationship(
        lazy="raise", cascade="all, delete-orphan"
    )

    @property
    def number(self) -> str:
        """Readable and unique without a counter: the year it was opened and its id."""
        return f"T{self.created_at:%Y}-{self.id:07d}"

    @classmethod
    def __scope_parts__(cls, viewer: Viewer) -> tuple[ScopePart, ...]:
        if viewer.is_contact:  # the portal: their customer's (and a group's branches')
            return (of_contact(cls.customer_id, viewer),)
        # Owned or handled (linked service) in the viewer's subtree, assigned, collaborating.
        # Declared by parts, so a queue page reads each through its own index (the open
        # ones by unit and due time, see below) instead of one OR no index serves.
        me = viewer.staff_id or -1
        collaborating = select(TicketCollaborator.ticket_id).where(
            TicketCollaborator.staff_id == me
        )
        return (
            OwnedBySubtree(cls.owning_unit_id),
            OwnedBySubtree(cls.handling_unit_id),
            cls.assignee_id == me,
            cls.id.in_(collaborating),
        )

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return any_part(viewer, *cls.__scope_parts__(viewer))


class TicketCollaborator(Base):
    __tablename__ = "ticket_collaborators"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TicketEvent(Base):
    """The ticket's timeline: messages, notes, state changes, routing, SLA events."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    kind: Mapped[str] = mapped_column(String(20))  # created, reply, note, state, route, …
    actor: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(default=False)  # shown to the customer
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RoutingRule(Base):
    """Admin-defined routing: a category to a function, or on-site jobs to the site's unit."""

    __tablename__ = "routing_rules"
    __table_args__ = (CheckConstraint("kind IN ('category_function', 'site_region')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("ticket_categories.code"))
    function: Mapped[str | None] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")


# --- SLA escalation ladder --------------------------------------------------------------------

ESCALATION_TARGETS = ("first_response", "next_response", "resolution")
ESCALATION_STAGES = ("warn", "breach", "parent")
ESCALATION_LEVELS = {"warn": 1, "breach": 2, "parent": 3}  # Ticket.<target>_escalation

# A target's clock runs on an open, unpaused ticket until it is met. Constants are written as
# SQL literals (not bound parameters), so that the sweep's WHERE clauses, which repeat these
# conditions, imply the partial indexes below on both databases.
_OPEN_UNPAUSED = and_(
    Ticket.state.in_([literal_column(f"'{s}'") for s in ("new", "open", "pending", "on_hold")]),
    Ticket.paused_at.is_(None),
)
SLA_RUNNING: dict[str, ColumnElement[bool]] = {
    "first_response": and_(_OPEN_UNPAUSED, Ticket.first_response_at.is_(None)),
    "next_response": and_(_OPEN_UNPAUSED, Ticket.next_response_due.is_not(None)),
    "resolution": and_(_OPEN_UNPAUSED, Ticket.resolved_at.is_(None)),
}
# Per target: (due time, warning instant, escalation level) columns.
SLA_COLUMNS: dict[str, tuple[Any, Any, Any]] = {
    "first_response": (
        Ticket.first_response_due,
        Ticket.first_response_warn_at,
        Ticket.first_response_escalation,
    ),
    "next_response": (
        Ticket.next_response_due,
        Ticket.next_response_warn_at,
        Ticket.next_response_escalation,
    ),
    "resolution": (Ticket.resolution_due, Ticket.resolution_warn_at, Ticket.resolution_escalation),
}
# Running and not yet breached (warn and breach stages) / breached, parent not yet told.
SLA_BEFORE_BREACH = {
    t: and_(SLA_RUNNING[t], SLA_COLUMNS[t][2] < literal_column("2")) for t in ESCALATION_TARGETS
}
SLA_AFTER_BREACH = {
    t: and_(SLA_RUNNING[t], SLA_COLUMNS[t][2] == literal_column("2")) for t in ESCALATION_TARGETS
}


def _partial(name: str, column: Any, where: ColumnElement[bool]) -> Index:
    return Index(name, column, postgresql_where=where, sqlite_where=where)


# The queues: open tickets of one unit (owning, or handling for linked service) by nearest
# due time, the keyset's id last, so a page per unit reads its first entries in order.
OPEN = Ticket.state.in_([literal_column(f"'{s}'") for s in ("new", "open", "pending", "on_hold")])
for _col in ("owning_unit_id", "handling_unit_id"):
    Index(
        f"ix_tickets_open_{_col.removesuffix('_id')}_due",
        getattr(Ticket, _col),
        Ticket.resolution_due,
        Ticket.id,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
del _col
# Routing's least-loaded agent: each agent's open work by priority, read from the index
# alone (a plain (assignee, state) index let PostgreSQL AND it with a whole queue index).
Index(
    "ix_tickets_open_assignee",
    Ticket.assignee_id,
    Ticket.priority,
    postgresql_where=OPEN,
    sqlite_where=OPEN,
)


# What the escalation sweep reads, one index per claim: tickets before their breach by
# warning instant (warn_at <= due, so it finds the breached ones too), and breached ones
# by due time. A ticket leaves both once its target is met, it pauses, or it climbed the
# whole ladder, so they hold only what may still escalate.
for _target in ESCALATION_TARGETS:
    _due, _warn_at, _level = SLA_COLUMNS[_target]
    _partial(f"ix_tickets_sla_{_target}_pending", _warn_at, SLA_BEFORE_BREACH[_target])
    _partial(f"ix_tickets_sla_{_target}_breached", _due, SLA_AFTER_BREACH[_target])
del _target, _due, _warn_at, _level


class EscalationStep(Base):
    """One rung of the SLA escalation ladder taken for a ticket: the proof that it happened.

    Unique per (ticket, target, cycle, stage), so each step happens exactly once; `cycle` is
    0 for first response and resolution and the ticket's next-response cycle otherwise.
    `sweep` names the sweep that claimed the row, whose timeline events and outbox rows are
    written from it in the same transaction.
    """

    __tablename__ = "escalation_steps"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target", "cycle", "stage"),
        CheckConstraint(
            "target IN ('first_response', 'next_response', 'resolution')", name="target"
        ),
        CheckConstraint("stage IN ('warn', 'breach', 'parent')", name="stage"),
        Index("ix_escalation_steps_sweep", "sweep"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(10))
    due: Mapped[datetime] = mapped_column(UTCDateTime())
    recipient: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    sweep: Mapped[str] = mapped_column(String(32))


class TicketAttachment(Base):
    """A file on a ticket. Stored by content hash under the data dir, outside any web root;
    served only through an access-checked download."""

    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # what the content is (filetypes.KINDS)
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    # Shown to the customer in the portal (their own uploads, and files staff chose to share).
    public: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


# --- custom fields per category ---------------------------------------------------------------


class TicketField(Base):
    """An admin-defined field of the tickets of a category and its sub-categories (every
    category when `category_code` is None). Fields are deactivated, never deleted, so the
    values tickets hold keep their meaning."""

    __tablename__ = "ticket_fields"
    __table_args__ = (CheckConstraint("type IN ('text', 'number', 'date', 'choice')", name="type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The name in the API (`custom_fields.<key>`) and in filters; unique across categories,
    # so a sub-category's inherited fields never collide with its own.
    key: Mapped[str] = mapped_column(String(40), unique=True)
    category_code: Mapped[str | None] = mapped_column(
        ForeignKey("ticket_categories.code"), index=True
    )
    label_zh: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(10))
    required: Mapped[bool] = mapped_column(default=False)
    # Choice fields: [{"value": "fibre", "label_zh": "光纤", "label_en": "Fibre"}, …]
    choices: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)


class TicketFieldValue(Base):
    """One custom field value of a ticket, in the column of its type, so that filters compare
    numbers as numbers and dates as dates through a B-tree index on both databases. The
    ticket's `custom_fields` JSON is the read copy (pages and the API read it without a
    join); both are written together by kefu.tickets.fields.write_values only."""

    __tablename__ = "ticket_field_values"
    __table_args__ = (
        Index("ix_ticket_field_values_text", "field_id", "value_text"),
        Index("ix_ticket_field_values_number", "field_id", "value_number"),
        Index("ix_ticket_field_values_date", "field_id", "value_date"),
    )

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    field_id: Mapped[int] = mapped_column(ForeignKey("ticket_fields.id"), primary_key=True)
    value_text: Mapped[str | None] = mapped_column(String(500))  # text and choice
    value_number: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    value_date: Mapped[date | None] = mapped_column(Date)


# --- saved views of the agent console ---------------------------------------------------------


def shared_with_me(unit_id_col: Any, viewer: Viewer) -> ColumnElement[bool]:
    """Rows shared with the viewer's own unit or any unit above it (the unit's members use
    what their unit, city or province shares)."""
    if viewer.unit_path is None:
        return literal_column("1") == literal_column("0")
    above = [int(p) for p in viewer.unit_path.strip("/").split("/") if p]
    return unit_id_col.in_(above)


class TicketView(Base):
    """A saved set of queue filters: personal (unit_id NULL) or shared with a unit by a
    supervisor. A view only filters: its tickets still go through the viewer's scope."""

    __tablename__ = "ticket_views"
    __table_args__ = (Index("ix_ticket_views_owner_id", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), index=True
    )  # shared with this unit and the units below it
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    __mapper_args__ = {"version_id_col": version}

    @property
    def shared(self) -> bool:
        return self.unit_id is not None

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        # Mine; shared with my unit or above (to use); shared with my subtree (to manage).
        me = viewer.staff_id or -1
        return (
            (cls.owner_id == me)
            | shared_with_me(cls.unit_id, viewer)
            | owned_by_subtree(cls.unit_id, viewer)
        )
