"""The agent console: queues with live SLA timers, the ticket page (timeline, reply, note,
state, transfer, attachments) and agent intake for phone, walk-in and visit tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, MultiDict, UploadFile

from kefu.clock import now
from kefu.complaints import service as complaints
from kefu.customers import queries as customer_queries
from kefu.customers.models import Contact, Customer
from kefu.errors import Conflict, FieldError, Forbidden, Invalid
from kefu.i18n import N_, get_locale
from kefu.pagination import paginate
from kefu.staff import queries as staff_queries
from kefu.staff.models import Staff
from kefu.tickets import attachments, bulk, escalation, fields, policy, queries, saved_views
from kefu.tickets import service as tickets
from kefu.tickets.models import Category, Ticket, TicketEvent, TicketField
from kefu.tickets.schemas import (
    BulkAction,
    MessageIn,
    TicketCreate,
    TicketUpdate,
    TransferIn,
    ViewCreate,
    ViewFilters,
    ViewUpdate,
)
from kefu.units.models import Unit
from kefu.web import console, ticket_fields, ticket_links
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    optional,
    parse,
    redirect,
    render,
    text,
    tr,
    url_with,
)
from kefu.web.units import visible_tree

router = APIRouter()

PAGE_SIZE = 25
SEARCH_LIMIT = 10

# Labels of stored codes (the codes stay English in the database and the API).
STATE_LABELS = {
    "new": N_("New"),
    "open": N_("In progress"),
    "pending": N_("Waiting on the customer"),
    "on_hold": N_("On hold"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
PRIORITY_LABELS = {
    "urgent": N_("Urgent"),
    "high": N_("High"),
    "normal": N_("Normal"),
    "low": N_("Low"),
}
CHANNEL_LABELS = {
    "portal": N_("Customer portal"),
    "email": N_("E-mail"),
    "api": N_("API"),
    "phone": N_("Phone"),
    "walk_in": N_("Walk-in"),
    "visit": N_("Visit"),
}
AGENT_CHANNELS = ("phone", "walk_in", "visit")
TIERS = ("A", "B", "C")
LEVELS = ("5A", "4A", "3A", "2A", "1A")
TARGET_LABELS = {
    "first_response": N_("First response"),
    "next_response": N_("Next response"),
    "resolution": N_("Resolution"),
}
RULE_LABELS = {
    "owning_unit": N_("the owning unit"),
    "site_region": N_("the site's region (linked service)"),
    "account_manager": N_("the account manager"),
    "least_loaded": N_("the least-loaded agent"),
    "unassigned": N_("nobody available"),
    "manual": N_("manual transfer"),
}
BREACHED_OPTIONS = [("yes", N_("Breached")), ("no", N_("Not breached"))]
VIEWS = {"mine": N_("My queue"), "unit": N_("My unit's queue")}
CONFLICT = N_("Someone else changed this ticket meanwhile; reload it and try again.")
CHANNEL_REFUSED = N_("Agent entry takes phone, walk-in or visit tickets.")
PICK_CUSTOMER = N_("Choose the customer first.")
NOTICES = {
    "created": N_("Ticket created."),
    "replied": N_("Reply sent."),
    "noted": N_("Internal note added."),
    "saved": N_("Saved."),
    "transferred": N_("Transferred."),
    "attached": N_("File attached."),
    "deleted": N_("Deleted."),
}


def rule_label(rule: str | None) -> str:
    if rule and rule.startswith("category_function:"):
        return tr(N_("the unit with the function {function}"), function=rule.split(":", 1)[1])
    return tr(RULE_LABELS.get(rule or "", rule or ""))


def sla_title(data: dict[str, Any]) -> str:
    try:
        return tr(escalation.title(str(data.get("target")), str(data.get("stage"))))
    except KeyError:
        return tr(N_("SLA event"))


# --- SLA timers -------------------------------------------------------------------------------


def clock_text(seconds: float) -> str:
    """Remaining time as H:MM, negative when overdue (the same format as kefu.js)."""
    sign = "−" if seconds < 0 else ""
    minutes = int(abs(seconds) // 60)
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Timer:
    """One SLA target's clock: the remaining time and its share of the whole target."""

    target: str  # first_response, next_response, resolution
    start: datetime
    due: datetime
    at: datetime  # now, or when the clock paused
    breached: bool
    paused: bool

    @property
    def label(self) -> str:
        return TARGET_LABELS[self.target]

    @property
    def remaining(self) -> float:
        return (self.due - self.at).total_seconds()

    @property
    def share(self) -> float:
        whole = (self.due - self.start).total_seconds()
        return self.remaining / whole if whole > 0 else (1.0 if self.remaining > 0 else -1.0)

    @property
    def tone(self) -> str:
        if self.breached or self.remaining < 0:
            return "breached"
        if self.share < 0.25:
            return "red"
        if self.share <= 0.5:
            return "amber"
        return "green"

    @property
    def text(self) -> str:
        return clock_text(self.remaining)


def timers(ticket: Ticket, at: datetime | None = None) -> list[Timer]:
    """The running (or paused) clocks of a ticket; none once it is resolved or closed."""
    if ticket.state in ("resolved", "closed"):
        return []
    at = at or now()
    paused = ticket.paused_at is not None
    when_ = ticket.paused_at if ticket.paused_at is not None else at
    out = []
    if ticket.first_response_at is None and ticket.first_response_due is not None:
        out.append(
            Timer(
                "first_response",
                ticket.created_at,
                ticket.first_response_due,
                when_,
                ticket.breached_first_response,
                paused,
            )
        )
    if ticket.next_response_due is not None:
        out.append(
            Timer(
                "next_response", ticket.updated_at, ticket.next_response_due, when_, False, paused
            )
        )
    if ticket.resolution_due is not None:
        out.append(
            Timer(
                "resolution",
                ticket.created_at,
                ticket.resolution_due,
                when_,
                ticket.breached_resolution,
                paused,
            )
        )
    return out


# --- look-ups of what a page shows beside its tickets -------------------------------------------


def categories(db: Session) -> list[tuple[str, str]]:
    zh = get_locale() == "zh_CN"
    return [(c.code, c.name_zh if zh else c.name_en) for c in queries.categories(db)]


def category_name(db: Session, code: str) -> str:
    row = db.get(Category, code)
    if row is None:
        return code
    return row.name_zh if get_locale() == "zh_CN" else row.name_en


def visible_customer(db: Session, me: Me, customer_id: int | None) -> Customer | None:
    if customer_id is None:
        return None
    stmt = customer_queries.customers(db, me.viewer).where(Customer.id == customer_id)
    return db.scalars(stmt).first()


def contacts_of(db: Session, customer: Customer | None) -> list[Contact]:
    if customer is None:
        return []
    return list(db.scalars(customer_queries.contacts(customer.id).order_by(Contact.id)))


# --- queues -----------------------------------------------------------------------------------


def _choice(value: str, allowed: Any) -> str:
    return value if value in allowed else ""


FILTER_NAMES = (
    "state",
    "priority",
    "category",
    "tier",
    "service_level",
    "breached",
    "unit_id",
    "assignee",
    "q",
    "tag",
    "field",
)
ASSIGNEE_OPTIONS = [
    ("me", N_("Me")),
    ("unassigned", N_("Unassigned")),
    ("anyone", N_("Anyone")),
]
BULK_ACTIONS = [
    ("assign", N_("Assign to")),
    ("state", N_("Change state to")),
    ("transfer", N_("Transfer to")),
]
BULK_NOTICES = {"bulk": N_("Done: every selected ticket changed.")}


MULTI = ("state", "priority", "category", "tier", "service_level", "field")
FIELD_OPS = {"=": "=", ">=": "≥", "<=": "≤"}


def _filters_to_values(f: ViewFilters) -> dict[str, Any]:
    """A view's filters as the filter form shows them: a list per filter of several values
    ([] = all; for the state, [] = every open state and ["any"] = any state)."""
    state: list[str] = ["any"] if f.state is None else list(f.state)
    if "open_states" in state:
        rest = [s for s in state if s != "open_states"]
        state = [s for s in STATE_LABELS if s in policy.OPEN_STATES or s in rest] if rest else []
    return {
        "state": state,
        "priority": list(f.priority or ()),
        "category": list(f.category or ()),
        "tier": list(f.tier or ()),
        "service_level": list(f.service_level or ()),
        "breached": "" if f.breached is None else ("yes" if f.breached else "no"),
        "unit_id": str(f.unit_id) if f.unit_id else "",
        "assignee": f.assignee,
        "q": f.q or "",
        "tag": f.tag or "",
        "field": list(f.field),
    }


def _values_to_filters(v: dict[str, Any]) -> ViewFilters:
    state = v["state"]
    return ViewFilters.model_validate(
        {
            "state": None if "any" in state else (state or ["open_states"]),
            "priority": v["priority"] or None,
            "category": v["category"] or None,
            "tier": v["tier"] or None,
            "service_level": v["service_level"] or None,
            "breached": {"yes": True, "no": False}.get(v["breached"]),
            "unit_id": int(v["unit_id"]) if v["unit_id"] else None,
            "assignee": v["assignee"] or "anyone",
            "q": v["q"] or None,
            "tag": v["tag"] or None,
            "field": v["field"][:10],
        }
    )


def _read(raw: Any, names: Any) -> dict[str, Any]:
    """The named filters of a query string or a form: a list for those of several values
    (blank ones dropped: the form sends a blank one so that "none ticked" is said)."""
    return {
        k: [x for x in raw.getlist(k) if isinstance(x, str) and x]
        if k in MULTI
        else (raw.get(k) or "")
        for k in names
    }


def _several(values: list[str], allowed: Any) -> list[str]:
    return [x for x in dict.fromkeys(values) if x in allowed]


def _clean_values(
    raw: dict[str, Any], cats: list[tuple[str, str]], unit_ids: set[str]
) -> dict[str, Any]:
    """Filter values (as `_read` gives them), each checked against its options."""
    state = _several(raw.get("state", []), (*STATE_LABELS, "any"))
    return {
        "state": ["any"] if "any" in state else state,
        "priority": _several(raw.get("priority", []), PRIORITY_LABELS),
        "category": _several(raw.get("category", []), {c for c, _ in cats}),
        "tier": _several(raw.get("tier", []), TIERS),
        "service_level": _several(raw.get("service_level", []), LEVELS),
        "breached": _choice(raw.get("breached", ""), ("yes", "no")),
        "unit_id": _choice(raw.get("unit_id", ""), unit_ids),
        "assignee": _choice(raw.get("assignee", ""), dict(ASSIGNEE_OPTIONS)) or "anyone",
        "q": (raw.get("q") or "").strip()[:100],
        "tag": " ".join((raw.get("tag") or "").split()).lower()[:40],
        "field": [x.strip()[:200] for x in dict.fromkeys(raw.get("field", []))][:10],
    }


@dataclass
class FieldFilterBar:
    """The custom field part of the filter bar: the fields offered (those of the chosen
    categories), the one being added with its operator and value, and the filters already
    set, as chips to untick."""

    options: list[tuple[str, str]]
    chosen: TicketField | None
    op: str
    value: str
    chips: list[tuple[str, str]]  # (expression, what it says)
    ops: dict[str, str]


def _chip(part: fields.FilterPart) -> str:
    shown = fields.choice_label(part.field, part.value) if part.field.type == "choice" else None
    value = str(shown) if shown is not None else str(part.value)
    return f"{ticket_fields.label_of(part.field)} {FIELD_OPS[part.op]} {value}"


def _checked_filters(
    db: Session, v: dict[str, Any], p: Any
) -> tuple[FieldFilterBar, list[FieldError]]:
    """Check the tag and the field filters (those set, and the one being added from
    `ff_key`, `ff_op`, `ff_value`): good ones stay in `v`, bad ones go, each with why."""
    errors: list[FieldError] = []
    if v["tag"]:
        try:
            tickets.clean_tags([v["tag"]])
        except Invalid as exc:
            errors += [FieldError("tag", e.message, e.params) for e in exc.errors]
            v["tag"] = ""
    key = str(p.get("ff_key") or "")
    value = str(p.get("ff_value") or "").strip()[:200]
    options = fields.filter_fields(db, v["category"])
    chosen = next((f for f in options if f.key == key), None)
    op = str(p.get("ff_op") or "=")
    if op not in FIELD_OPS or chosen is None or chosen.type not in ("number", "date"):
        op = "="
    adding = f"{chosen.key}{op}{value}" if chosen is not None and value else None
    parts: dict[str, fields.FilterPart] = {}
    for expression in [*v["field"], *([adding] if adding else [])]:
        try:
            part = fields.parse_filter(db, expression)
        except Invalid as exc:
            errors += [FieldError("field", e.message, e.params) for e in exc.errors]
            continue
        parts.setdefault(part.expression, part)
        if expression is adding:
            value = ""  # added: it shows as a chip now
    v["field"] = list(parts)[:10]
    bar = FieldFilterBar(
        options=[(f.key, ticket_fields.label_of(f)) for f in options],
        chosen=chosen,
        op=op,
        value=value,
        chips=[(x, _chip(parts[x])) for x in v["field"]],
        ops=FIELD_OPS,
    )
    return bar, errors


@router.get("/tickets")
def queue(request: Request, me: CurrentMe, db: Db) -> Response:
    return _queue_page(request, db, me)


def _queue_page(
    request: Request,
    db: Session,
    me: Me,
    *,
    status: int = 200,
    bulk_form: Form | None = None,
    view_form: Form | None = None,
    selected: set[str] | None = None,
    back: str | None = None,
) -> Response:
    # After a refused form: the queue as the person saw it (its URL came in `back`).
    p: Any = (
        MultiDict(parse_qsl(urlsplit(back).query, keep_blank_values=True))
        if back
        else request.query_params
    )
    cats = categories(db)
    tree = visible_tree(db, me)
    unit_choices = tree.choices()
    unit_ids = {str(c.unit.id) for c in unit_choices}
    saved = None
    raw_saved = p.get("saved", "")
    if raw_saved.isdigit():
        saved = saved_views.get_view(db, me.viewer, int(raw_saved))  # not visible: 404
        view = "saved"
        defaults = _filters_to_values(saved_views.filters_of(saved))
    else:
        view = _choice(p.get("view", ""), VIEWS) or "mine"
        defaults = _filters_to_values(
            ViewFilters(assignee="me") if view == "mine" else ViewFilters(unit_id=me.unit_id)
        )
    # What the query string gives wins over the view's own values (a form sends them all).
    given = _read(p, [k for k in FILTER_NAMES if k in p])
    v = _clean_values({**defaults, **given}, cats, unit_ids)
    field_bar, filter_errors = _checked_filters(db, v, p)
    filters = Form({"view": view, "saved": raw_saved if saved else "", **v}, key="filter")
    stmt = queries.filtered(db, me.viewer, _values_to_filters(v))
    cursor = p.get("cursor") or None
    page = paginate(
        db, stmt, key=(Ticket.resolution_due, Ticket.id), limit=PAGE_SIZE, cursor=cursor
    )
    rows = page.items
    at = now()
    personal, shared = saved_views.sidebar(db, me.viewer)
    saved_path = queries.rows_by_id(db, Unit, {saved.unit_id}) if saved else {}
    may_share = me.viewer.has_role(*saved_views.SHARE_ROLES)
    ctx = {
        "view": view,
        "views": VIEWS,
        "saved": saved,
        "saved_editable": bool(
            saved
            and saved_views.may_edit(
                me.viewer, saved, saved_path[saved.unit_id].path if saved.unit_id else None
            )
        ),
        "personal_views": personal,
        "shared_views": shared,
        "filters": filters,
        "field_bar": field_bar,
        "filter_errors": filter_errors,
        "filter_query": urlencode({k: v[k] for k in FILTER_NAMES if v[k]}, doseq=True),
        "tickets": rows,
        "timers": {t.id: timers(t, at) for t in rows},
        "customers": queries.rows_by_id(db, Customer, {t.customer_id for t in rows}),
        "people": queries.rows_by_id(db, Staff, {t.assignee_id for t in rows}),
        "units": queries.rows_by_id(db, Unit, {t.handling_unit_id for t in rows}),
        "state_options": [
            *[(s, STATE_LABELS[s]) for s in STATE_LABELS],
            ("any", N_("Any state")),
        ],
        "priority_options": list(PRIORITY_LABELS.items()),
        "category_options": cats,
        "tier_options": [(t, t) for t in TIERS],
        "level_options": [(lv, lv) for lv in LEVELS],
        "breached_options": BREACHED_OPTIONS,
        "assignee_options": ASSIGNEE_OPTIONS,
        "unit_choices": unit_choices,
        "share_choices": [
            c
            for c in unit_choices
            if me.viewer.is_admin or c.unit.path.startswith(me.viewer.unit_path or "/none/")
        ]
        if may_share
        else [],
        "bulk_form": bulk_form
        or Form(
            {"action": "assign", "assignee_id": "", "state": "", "unit_id": "", "reason": ""},
            key="bulk",
        ),
        "transfer_units": tree.choices(active_only=True),
        "bulk_actions": BULK_ACTIONS,
        "bulk_state_options": [(s, STATE_LABELS[s]) for s in STATE_LABELS if s != "new"],
        "staff_options": _staff_options(db, me),
        "view_form": view_form
        or Form({"name": saved.name if saved else "", "unit_id": ""}, key="saveview"),
        "selected": selected or set(),
        "first_url": url_with(request, cursor=None) if cursor else None,
        "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        "notice": (NOTICES | BULK_NOTICES).get(p.get("notice", "")),
        **({"here": back} if back else {}),
        **LABELS,
    }
    return render(request, "tickets/queue.html", ctx, status=status, fragment="results")


def _staff_options(db: Session, me: Me) -> list[tuple[int, str]]:
    return [
        (s.id, s.display_name)
        for s in all_rows(
            db, staff_queries.staff(db, me.viewer, active=True), key=Staff.id, cap=500
        )
    ]


def _posted_filters(db: Session, me: Me, form: FormData) -> ViewFilters:
    """The filters a save form carries (checked again: a bad one is refused, not dropped)."""
    unit_ids = {str(c.unit.id) for c in visible_tree(db, me).choices()}
    v = _clean_values(_read(form, FILTER_NAMES), categories(db), unit_ids)
    _, errors = _checked_filters(db, v, form)
    if errors:
        raise Invalid(errors=[FieldError("name", e.message, e.params) for e in errors])
    return _values_to_filters(v)


def _back(form: FormData) -> str:
    """Where a console form came from (a local /tickets URL only)."""
    back = text(form, "back")
    return back if back.startswith("/tickets") and not back.startswith("//") else "/tickets"


@router.post("/tickets/views")
def save_view(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    """Save the filters shown as a new view (personal, or shared with a unit)."""
    values = {"name": text(form, "name"), "unit_id": text(form, "unit_id")}
    try:
        with db.begin_nested():
            data = parse(
                ViewCreate,
                {
                    "name": values["name"],
                    "unit_id": optional(values["unit_id"]),
                    "filters": _posted_filters(db, me, form).model_dump(),
                },
            )
            view = saved_views.create_view(db, me.viewer, data)
    except (Invalid, Forbidden) as exc:
        db.expire_all()
        errors = exc.errors or [FieldError("unit_id", exc.message, exc.params)]
        bad = Form(values, errors, key="saveview")
        return _queue_page(request, db, me, status=exc.status, view_form=bad, back=_back(form))
    return redirect(request, f"/tickets?saved={view.id}", "saved")


@router.post("/tickets/views/{view_id}")
def update_view(
    view_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    """Replace a saved view's filters by those shown (and maybe rename it)."""
    view = saved_views.get_view(db, me.viewer, view_id)
    values = {"name": text(form, "name"), "unit_id": ""}
    try:
        with db.begin_nested():
            data = parse(
                ViewUpdate,
                {
                    "version": _version(form),
                    "name": values["name"] or view.name,
                    "filters": _posted_filters(db, me, form).model_dump(),
                },
            )
            saved_views.update_view(db, me.viewer, view_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors if isinstance(exc, Invalid) else _conflict_errors(exc)
        bad = Form(values, errors, key="saveview")
        return _queue_page(request, db, me, status=exc.status, view_form=bad, back=_back(form))
    return redirect(request, f"/tickets?saved={view_id}", "saved")


@router.post("/tickets/views/{view_id}/delete")
def delete_view(
    view_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    saved_views.delete_view(db, me.viewer, view_id)
    return redirect(request, "/tickets", "deleted")


@router.post("/tickets/bulk")
def bulk_action(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    """Assign, change the state of or transfer the ticked tickets: all or nothing, with a
    report."""
    picked = [str(x) for x in form.getlist("t") if isinstance(x, str)]
    values = {
        "action": text(form, "action"),
        "assignee_id": text(form, "assignee_id"),
        "state": text(form, "state"),
        "unit_id": text(form, "unit_id"),
        "reason": text(form, "reason"),
    }
    items = []
    for raw in picked:
        tid, _, ver = raw.partition(":")
        if tid.isdigit() and ver.isdigit():
            items.append({"id": int(tid), "version": int(ver)})
    try:
        with db.begin_nested():
            if not items:
                raise Invalid.field("tickets", N_("Tick the tickets first."))
            data = parse(
                BulkAction,
                {
                    "tickets": items,
                    "action": values["action"],
                    "assignee_id": optional(values["assignee_id"]),
                    "state": optional(values["state"]),
                    "unit_id": optional(values["unit_id"]),
                    "reason": values["reason"],
                },
            )
            bulk.bulk_update(db, me.viewer, data)
    except (Invalid, Conflict, Forbidden) as exc:
        db.expire_all()
        bad = Form(values, _bulk_report(db, me, exc, items), key="bulk")
        return _queue_page(
            request,
            db,
            me,
            status=exc.status,
            bulk_form=bad,
            selected=set(picked),
            back=_back(form),
        )
    return redirect(request, _back(form), "bulk")


def _bulk_report(db: Session, me: Me, exc: Any, items: list[dict[str, int]]) -> list[FieldError]:
    """The refusal as lines a person reads: the summary, then each ticket's number and why."""
    ids = [i["id"] for i in items]
    visible_rows = db.scalars(queries.tickets(db, me.viewer).where(Ticket.id.in_(ids or [-1])))
    numbers = {t.id: t.number for t in visible_rows}  # only tickets the person may see
    out = []
    if exc.message and exc.message != exc.title:
        out.append(FieldError("report", exc.message, exc.params))
    for e in exc.errors:
        parts = e.field.split(".")
        if parts[0] == "tickets" and len(parts) > 1 and parts[1].isdigit():
            tid = items[int(parts[1])]["id"] if int(parts[1]) < len(items) else 0
            number = numbers.get(tid, f"#{tid}")
            params = {**e.params, "number": number}
            for key in ("frm", "to"):  # state codes, as the page names them
                if params.get(key) in STATE_LABELS:
                    params[key] = tr(STATE_LABELS[params[key]])
            out.append(FieldError("tickets", e.message, params))
        else:
            out.append(e)
    if not out:
        out.append(FieldError("report", exc.message or exc.title, exc.params))
    return out


LABELS = {
    "STATE_LABELS": STATE_LABELS,
    "PRIORITY_LABELS": PRIORITY_LABELS,
    "CHANNEL_LABELS": CHANNEL_LABELS,
}


# --- the ticket page --------------------------------------------------------------------------


def _message_form(kind: str) -> Form:
    return Form({"body": ""}, key=kind)


def _ticket_page(
    request: Request,
    db: Session,
    me: Me,
    ticket_id: int,
    *,
    status: int = 200,
    **forms: Form,
) -> Response:
    ticket = tickets.get_ticket(db, me.viewer, ticket_id)  # out of scope: 404
    events = all_rows(db, tickets.events(db, me.viewer, ticket.id), key=TicketEvent.id)
    files = {a.id: a for a in attachments.attachments(db, me.viewer, ticket.id)}
    unit_ids = {ticket.owning_unit_id, ticket.handling_unit_id}
    staff_ids = {ticket.assignee_id}
    for e in events:
        unit_ids |= {e.data.get("unit_id"), e.data.get("previous")}
        staff_ids |= {e.data.get("assignee_id"), e.data.get("staff_id")}
    units_by_id = queries.rows_by_id(db, Unit, unit_ids)
    handling = units_by_id.get(ticket.handling_unit_id)
    tz = handling.timezone if handling else me.tz
    moves = sorted(policy.TRANSITIONS.get(ticket.state, frozenset()), key=list(STATE_LABELS).index)
    ctx = {
        "ticket": ticket,
        "events": events,
        "files": files,
        "customer": db.get(Customer, ticket.customer_id),
        "contact": db.get(Contact, ticket.contact_id) if ticket.contact_id else None,
        "units": units_by_id,
        "people": queries.rows_by_id(db, Staff, staff_ids),
        "owning": units_by_id.get(ticket.owning_unit_id),
        "handling": handling,
        "linked": ticket.handling_unit_id != ticket.owning_unit_id,
        "tz": tz,
        "timers": timers(ticket),
        "category": category_name(db, ticket.category_code),
        "closed": ticket.state == "closed",
        "reply_form": forms.get("reply_form")
        or console.reply_form(db, me, ticket, request)
        or _message_form("reply"),
        "note_form": forms.get("note_form") or _message_form("note"),
        "state_form": forms.get("state_form") or Form({"state": "", "reason": ""}, key="state"),
        "transfer_form": forms.get("transfer_form")
        or Form({"unit_id": "", "assignee_id": "", "reason": ""}, key="transfer"),
        "file_form": forms.get("file_form") or Form({"file": ""}, key="file"),
        "state_options": [(s, STATE_LABELS[s]) for s in moves],
        "unit_choices": visible_tree(db, me).choices(active_only=True),
        "staff_options": [
            (s.id, s.display_name)
            for s in all_rows(
                db, staff_queries.staff(db, me.viewer, active=True), key=Staff.id, cap=500
            )
        ],
        "target_labels": TARGET_LABELS,
        "rule_label": rule_label,
        "sla_title": sla_title,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        **ticket_fields.panel(db, ticket, forms.get("cf_form")),
        **ticket_links.panel(request, db, me, ticket, forms),
        **console.ticket_extras(db, me, ticket),
        "complaint": complaints.for_ticket(db, ticket.id),
        **LABELS,
    }
    return render(request, "tickets/ticket.html", ctx, status=status)


render_ticket_page = _ticket_page  # for the routes of ticket_fields and ticket_links


@router.get("/tickets/new")
def new_ticket(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    raw = p.get("customer_id", "")
    customer = visible_customer(db, me, int(raw)) if raw.isdigit() else None
    form = Form(
        {
            "customer_id": customer.id if customer else "",
            "contact_id": "",
            "category_code": (p.get("category_code") or "")[:40],
            "priority": "normal",
            "subject": "",
            "description": "",
            "channel": "phone",
            "site_region_code": "",
            "tags": "",
        },
        key="new",
    )
    return _intake_page(request, db, me, form, customer, q=(p.get("q") or "").strip()[:100])


def _intake_page(
    request: Request,
    db: Session,
    me: Me,
    form: Form,
    customer: Customer | None,
    *,
    q: str = "",
    status: int = 200,
) -> Response:
    ctx = {
        "form": form,
        "customer": customer,
        "contacts": contacts_of(db, customer),
        "q": q,
        "matches": queries.intake_customers(db, me.viewer, q, SEARCH_LIMIT) if q else [],
        "category_options": categories(db),
        "priority_options": list(PRIORITY_LABELS.items()),
        "channel_options": [(c, CHANNEL_LABELS[c]) for c in AGENT_CHANNELS],
        **ticket_fields.intake_fields(db, str(form["category_code"]), form),
    }
    fragment = "matches" if "q" in request.query_params else "intake"
    return render(request, "tickets/new.html", ctx, status=status, fragment=fragment)


@router.post("/tickets/new")
def create_ticket(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = {
        name: text(form, name)
        for name in (
            "customer_id",
            "contact_id",
            "category_code",
            "priority",
            "subject",
            "description",
            "channel",
            "site_region_code",
            "tags",
        )
    }
    custom = ticket_fields.posted_values(form)
    raw = values["customer_id"]
    customer = visible_customer(db, me, int(raw)) if raw.isdigit() else None
    try:
        if customer is None:
            raise Invalid.field("customer_id", PICK_CUSTOMER)
        if values["channel"] not in AGENT_CHANNELS:
            raise Invalid.field("channel", CHANNEL_REFUSED)
        with db.begin_nested():
            data = parse(
                TicketCreate,
                {
                    **values,
                    "contact_id": optional(values["contact_id"]),
                    "site_region_code": optional(values["site_region_code"]),
                    "priority": values["priority"] or "normal",
                    "custom_fields": custom,
                    "tags": ticket_links.split_tags(values["tags"]),
                },
            )
            ticket = tickets.open_ticket(db, me.viewer, data, channel=values["channel"])
    except Invalid as exc:
        db.expire_all()
        shown = {**values, **{ticket_fields.input_name(k): v for k, v in custom.items()}}
        bad = Form(shown, ticket_fields.web_errors(exc.errors), key="new")
        return _intake_page(request, db, me, bad, customer, status=422)
    return redirect(request, f"/tickets/{ticket.id}", "created")


@router.get("/tickets/{ticket_id}")
def ticket_page(ticket_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _ticket_page(request, db, me, ticket_id)


def _version(form: FormData) -> int:
    raw = text(form, "version")
    return int(raw) if raw.isdigit() else -1


def _conflict_errors(exc: Conflict) -> list[FieldError]:
    return [FieldError("version", exc.message or CONFLICT, {})]


@router.post("/tickets/{ticket_id}/messages")
def add_message(
    ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)  # out of scope: 404 before anything else
    internal = text(form, "internal") == "1"
    values = {"body": text(form, "body")}
    try:
        with db.begin_nested():
            data = parse(MessageIn, {**values, "internal": internal})
            tickets.add_message(db, me.viewer, ticket_id, data)
    except Invalid as exc:
        db.expire_all()
        key = "note" if internal else "reply"
        bad = Form(values, exc.errors, key=key)
        return _ticket_page(request, db, me, ticket_id, status=422, **{f"{key}_form": bad})
    return redirect(request, f"/tickets/{ticket_id}", "noted" if internal else "replied")


@router.post("/tickets/{ticket_id}/state")
def change_state(
    ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)
    values = {"state": text(form, "state"), "reason": text(form, "reason")}
    try:
        with db.begin_nested():
            data = parse(
                TicketUpdate,
                {"version": _version(form), "state": values["state"] or None, **values},
            )
            if data.state is None:
                raise Invalid.field("state", N_("Choose the new state."))
            tickets.update_ticket(db, me.viewer, ticket_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors if isinstance(exc, Invalid) else _conflict_errors(exc)
        bad = Form(values, errors, key="state")
        code = 409 if isinstance(exc, Conflict) else 422
        return _ticket_page(request, db, me, ticket_id, status=code, state_form=bad)
    return redirect(request, f"/tickets/{ticket_id}", "saved")


@router.post("/tickets/{ticket_id}/transfer")
def transfer(ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)
    values = {
        "unit_id": text(form, "unit_id"),
        "assignee_id": text(form, "assignee_id"),
        "reason": text(form, "reason"),
    }
    try:
        with db.begin_nested():
            data = parse(
                TransferIn,
                {
                    "version": _version(form),
                    "unit_id": optional(values["unit_id"]),
                    "assignee_id": optional(values["assignee_id"]),
                    "reason": values["reason"],
                },
            )
            tickets.transfer(db, me.viewer, ticket_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors if isinstance(exc, Invalid) else _conflict_errors(exc)
        bad = Form(values, errors, key="transfer")
        code = 409 if isinstance(exc, Conflict) else 422
        return _ticket_page(request, db, me, ticket_id, status=code, transfer_form=bad)
    return redirect(request, f"/tickets/{ticket_id}", "transferred")


@router.post("/tickets/{ticket_id}/attachments")
def upload(ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid.field("file", N_("Choose a file."))
        # At most one byte past the limit: an oversized upload costs no more memory.
        data = upload.file.read(attachments.max_bytes() + 1)
        with db.begin_nested():
            attachments.add_attachment(
                db, me.viewer, ticket_id, upload.filename, data, public=text(form, "public") == "1"
            )
    except Invalid as exc:
        db.expire_all()
        bad = Form({"file": ""}, exc.errors, key="file")
        return _ticket_page(request, db, me, ticket_id, status=422, file_form=bad)
    return redirect(request, f"/tickets/{ticket_id}", "attached")


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}")
def download(ticket_id: int, attachment_id: int, me: CurrentMe, db: Db) -> FileResponse:
    row, path = attachments.open_attachment(db, me.viewer, ticket_id, attachment_id)
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.filename,
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )
