"""Customer archives (客户档案): the scoped list, a new customer, and the 360° page — the
archive, contacts, branches, revenue by month, tier and service level with the reason,
pins, the tier history and the activity timeline.

Every page and sub-form reads the customer through the one scope (an id out of view is
404, for reads and for every write); every write is one service call in the request's
transaction, inside a savepoint so that a refused form leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.lists import format_list
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu import i18n, tree
from kefu.clock import now
from kefu.customers import queries
from kefu.customers import service as customers
from kefu.customers.models import Contact, Customer, Industry, RevenueRecord
from kefu.customers.schemas import (
    ContactCreate,
    ContactUpdate,
    CustomerCreate,
    CustomerUpdate,
    RevenueCreate,
)
from kefu.customers.timeline import TimelineItem, timeline
from kefu.errors import FieldError, Invalid, NotFound
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.portal import service as portal_service
from kefu.service_levels import service as service_levels
from kefu.service_levels.models import ServiceLevelVersion
from kefu.staff import queries as staff_queries
from kefu.staff.models import Staff
from kefu.tiering import service as tiering
from kefu.tiering.models import TierHistory
from kefu.tiering.schemas import PinIn
from kefu.units import queries as unit_queries
from kefu.units.models import Unit
from kefu.web import charts
from kefu.web.common import (
    LANGUAGES,
    NOTICES,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    env,
    optional,
    parse,
    redirect,
    render,
    text,
    tr,
    url_with,
)
from kefu.web.tiering import reason_label
from kefu.web.units import Tree, visible_tree

router = APIRouter()
env.globals.update(charts.TEMPLATE_HELPERS)
env.globals.setdefault("cx", env.get_template("customers/_macros.html").module)  # type: ignore[attr-defined]
NOTICES.setdefault("deleted", N_("Deleted."))
NOTICES.setdefault("pinned", N_("Tier pinned; runs keep it until it is unpinned."))
NOTICES.setdefault("unpinned", N_("Pin removed; the next run decides the tier again."))

PAGE_SIZE = 50
CHART_MONTHS = 36
# The same sort keys as the API's list (kefu.api.v1.customers.SORTS).
SORTS: dict[str, tuple[tuple[Any, ...], bool]] = {
    "id": ((Customer.id,), False),
    "name": ((Customer.name, Customer.id), False),
    "revenue": ((Customer.revenue_12m, Customer.id), True),
}
SORT_OPTIONS = [
    ("id", N_("Number")),
    ("name", N_("Name")),
    ("revenue", N_("Revenue, highest first")),
]
TIER_OPTIONS = [("A", "A"), ("B", "B"), ("C", "C")]
LEVELS = ("5A", "4A", "3A", "2A", "1A")
STATUS_LABELS = {"active": N_("In service"), "dormant": N_("Dormant"), "lost": N_("Lost")}
CHANNEL_LABELS = {
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "sms": N_("SMS"),
    "wechat": N_("WeChat"),
    "portal": N_("Portal"),
}
IMPORTANT_OPTIONS = [("1", N_("Important only")), ("0", N_("Not important"))]
# Names of archive fields, for the timeline's "Archive changed: …".
FIELD_LABELS = {
    "name": N_("Name"),
    "short_name": N_("Short name"),
    "credit_code": N_("Credit code"),
    "external_id": N_("External ID"),
    "parent_id": N_("Parent customer"),
    "industry_code": N_("Industry"),
    "region_code": N_("Region code"),
    "owning_unit_id": N_("Owning unit"),
    "account_manager_id": N_("Account manager"),
    "is_important": N_("Important"),
    "is_group": N_("Group customer"),
    "is_potential": N_("Potential"),
    "status": N_("Status"),
    "notes": N_("Notes"),
    "tier": N_("Tier"),
    "service_level": N_("Service level"),
    "tier_pinned": N_("Pinned"),
    "pin_reason": N_("Pin reason"),
}
# Service content items of a level (service_levels.schemas.ContentKey).
CONTENT_LABELS = {
    "dedicated_manager": N_("Dedicated account manager"),
    "onsite_response_hours": N_("On-site response within {n} hours"),
    "hotline_24x7": N_("7×24 hotline"),
    "visit_frequency_days": N_("A visit every {n} days"),
    "priority_dispatch": N_("Priority dispatch"),
    "periodic_review": N_("Periodic service review"),
}
NOT_A_DATE = N_("Must be a date (YYYY-MM-DD).")
AT_LEAST = N_("At least {min_length} characters.")

TEXT_FIELDS = (
    "name",
    "short_name",
    "credit_code",
    "external_id",
    "parent_id",
    "industry_code",
    "region_code",
    "owning_unit_id",
    "account_manager_id",
    "status",
    "notes",
)
FLAGS = ("is_important", "is_group", "is_potential")
REQUIRED = ("name", "region_code", "owning_unit_id", "status")
CONTACT_TEXT = ("name", "title", "phone", "email", "preferred_channel", "locale")
CONTACT_FLAGS = ("portal_access", "is_group_admin")


def content_label(item: dict[str, Any]) -> str | None:
    """One entitlement of a service level, readable; None when it is not granted."""
    key, value = item.get("key"), item.get("value")
    if key not in CONTENT_LABELS or value in (None, False, 0):
        return None
    return tr(CONTENT_LABELS[str(key)], n=value)


def _int(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _friendly(errors: list[FieldError], values: dict[str, Any]) -> list[FieldError]:
    """Clearer wording for two schema messages: a too-short value that is not empty, and a
    date that does not parse."""
    out = []
    for e in errors:
        if e.message == "Must not be empty." and str(values.get(e.field) or "").strip():
            e = FieldError(e.field, AT_LEAST, e.params)
        elif e.field == "date" and e.message == "Invalid value.":
            e = FieldError(e.field, NOT_A_DATE)
        out.append(e)
    return out


# --- the list ---------------------------------------------------------------------------------


def _names(db: Session, tree_: Tree, rows: list[Customer]) -> tuple[dict[int, Any], dict[int, Any]]:
    """Owning units and account managers of a page of customers: one query per kind at most
    (units the viewer's tree holds already are not read again)."""
    wanted = {c.owning_unit_id for c in rows}
    units_: dict[int, Any] = {u: tree_.by_id[u] for u in wanted if u in tree_.by_id}
    units_.update(unit_queries.by_ids(db, wanted - set(units_)))
    managers = staff_queries.by_ids(db, (c.account_manager_id for c in rows))
    return units_, managers


def _level_names(db: Session) -> dict[str, ServiceLevelVersion]:
    return {lv.code: lv.current for lv in service_levels.list_levels(db) if lv.current}


def level_name(version: ServiceLevelVersion | None) -> str:
    if version is None:
        return ""
    return version.name_en if i18n.get_locale() == "en" else version.name_zh


@router.get("/customers")
def list_customers(
    request: Request,
    me: CurrentMe,
    db: Db,
    q: str = "",
    tier: str = "",
    service_level: str = "",
    status: str = "",
    unit_id: str = "",
    important: str = "",
    parent_id: str = "",
    sort: str = "id",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:100]
    values = {
        "q": q,
        "tier": tier if tier in ("A", "B", "C") else "",
        "service_level": service_level if service_level in LEVELS else "",
        "status": status if status in STATUS_LABELS else "",
        "unit_id": unit_id,
        "important": important if important in ("0", "1") else "",
        "sort": sort if sort in SORTS else "id",
    }
    parent = None
    if _int(parent_id) is not None:
        parent = customers.get_customer(db, me.viewer, int(parent_id))  # out of view: 404
    stmt = queries.customers(
        db,
        me.viewer,
        q=q or None,
        tier=values["tier"] or None,
        service_level=values["service_level"] or None,
        status=values["status"] or None,
        unit_id=_int(unit_id),
        parent_id=parent.id if parent else None,
        important={"1": True, "0": False}.get(values["important"]),
    )
    key, descending = SORTS[values["sort"]]
    page = paginate(
        db, stmt, key=key, limit=PAGE_SIZE, cursor=cursor or None, descending=descending
    )
    tree_ = visible_tree(db, me)
    units_, managers = _names(db, tree_, page.items)
    levels = _level_names(db)
    return render(
        request,
        "customers/list.html",
        {
            "filters": Form(values, key="filter"),
            "parent": parent,
            "rows": page.items,
            "units_by_id": units_,
            "managers": managers,
            "level_title": lambda code: level_name(levels.get(code or "")),
            "unit_choices": tree_.choices(),
            "tier_options": TIER_OPTIONS,
            "level_options": [(lv, lv) for lv in LEVELS],
            "status_options": list(STATUS_LABELS.items()),
            "status_labels": STATUS_LABELS,
            "important_options": IMPORTANT_OPTIONS,
            "sort_options": SORT_OPTIONS,
            "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            "first_url": url_with(request, cursor=None) if cursor else None,
        },
    )


# --- the archive form (new and edit) -----------------------------------------------------


def _archive_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {f: text(form, f) for f in TEXT_FIELDS}
    values.update({f: text(form, f) == "1" for f in FLAGS})
    return values


def _customer_values(c: Customer) -> dict[str, Any]:
    values: dict[str, Any] = {
        f: "" if getattr(c, f) is None else str(getattr(c, f)) for f in TEXT_FIELDS
    }
    values.update({f: bool(getattr(c, f)) for f in FLAGS})
    return values


def _archive_data(values: dict[str, Any], names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in names:
        value = values[name]
        if name in FLAGS:
            data[name] = bool(value)
        elif name in REQUIRED or name == "notes":
            data[name] = value
        else:
            data[name] = optional(value.strip())
    return data


def _staff_choices(db: Session, me: Me, tree_: Tree, keep: int | None = None) -> list[Any]:
    """Active staff the viewer sees, in tree order (and the current manager, whoever)."""
    people = all_rows(db, staff_queries.staff(db, me.viewer, active=True), key=Staff.id, cap=2000)
    order = {c.unit.id: i for i, c in enumerate(tree_.choices())}
    people.sort(key=lambda s: (order.get(s.unit_id, len(order)), s.display_name))
    if keep is not None and all(s.id != keep for s in people):
        current = db.get(Staff, keep)
        if current is not None:
            people.insert(0, current)
    return [(str(s.id), _staff_label(s, tree_)) for s in people]


def _staff_label(person: Staff, tree_: Tree) -> str:
    unit = tree_.by_id.get(person.unit_id)
    return f"{person.display_name} · {unit.name}" if unit else person.display_name


def _industry_options(db: Session) -> list[tuple[str, str]]:
    english = i18n.get_locale() == "en"
    return [(i.code, i.name_en if english else i.name_zh) for i in queries.industries(db)]


def _archive_form_page(
    request: Request,
    db: Session,
    me: Me,
    form: Form,
    *,
    customer: Customer | None = None,
    status: int = 200,
) -> Response:
    tree_ = visible_tree(db, me)
    keep = customer.account_manager_id if customer else None
    ctx: dict[str, Any] = {
        "form": form,
        "customer": customer,
        "unit_choices": tree_.choices(active_only=True),
        "owning_unit_in_view": customer is None or customer.owning_unit_id in tree_.by_id,
        "owning_unit": (
            tree_.by_id.get(customer.owning_unit_id) or db.get(Unit, customer.owning_unit_id)
        )
        if customer
        else None,
        "staff_options": _staff_choices(db, me, tree_, keep),
        "industry_options": _industry_options(db),
        "status_options": [(k, tr(v)) for k, v in STATUS_LABELS.items()],
    }
    return render(request, "customers/form.html", ctx, status=status)


@router.get("/customers/new")
def new_customer(request: Request, me: CurrentMe, db: Db) -> Response:
    blank: dict[str, Any] = dict.fromkeys(TEXT_FIELDS, "")
    blank.update(dict.fromkeys(FLAGS, False))
    blank.update(
        {
            "owning_unit_id": request.query_params.get("unit_id") or str(me.unit_id),
            "status": "active",
            "parent_id": request.query_params.get("parent_id", ""),
        }
    )
    return _archive_form_page(request, db, me, Form(blank, key="c"))


@router.post("/customers")
def create_customer(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = _archive_values(form)
    data = _archive_data(values, [*TEXT_FIELDS, *FLAGS])
    # A required field left empty is "required", not "not a number".
    data = {k: v for k, v in data.items() if not (k in REQUIRED and v == "")}
    try:
        with db.begin_nested():  # on error nothing of it stays
            customer = customers.create_customer(db, me.viewer, parse(CustomerCreate, data))
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, _friendly(exc.errors, values), key="c")
        return _archive_form_page(request, db, me, bad, status=422)
    return redirect(request, f"/customers/{customer.id}", "created")


@router.get("/customers/{customer_id}/edit")
def edit_customer_page(customer_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    customer = customers.get_customer(db, me.viewer, customer_id)  # out of view: 404
    return _archive_form_page(
        request, db, me, Form(_customer_values(customer), key="c"), customer=customer
    )


@router.post("/customers/{customer_id}")
def edit_customer(
    customer_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    customer = customers.get_customer(db, me.viewer, customer_id)  # out of view: 404
    current = _customer_values(customer)
    values = {**current, **_archive_values(form)}
    if "owning_unit_id" not in form:  # a unit outside the viewer's tree is shown, not offered
        values["owning_unit_id"] = current["owning_unit_id"]
    # Only what changed: then a customer seen as its account manager can still be edited.
    changed = [
        k
        for k in (*TEXT_FIELDS, *FLAGS)
        if (values[k].strip() if isinstance(values[k], str) else values[k])
        != (current[k].strip() if isinstance(current[k], str) else current[k])
    ]
    try:
        with db.begin_nested():
            data = parse(CustomerUpdate, _archive_data(values, changed))
            customers.update_customer(db, me.viewer, customer_id, data)
    except Invalid as exc:
        db.expire_all()
        customer = customers.get_customer(db, me.viewer, customer_id)
        bad = Form(values, _friendly(exc.errors, values), key="c")
        return _archive_form_page(request, db, me, bad, customer=customer, status=422)
    return redirect(request, f"/customers/{customer_id}", "saved")


# --- the 360° page ------------------------------------------------------------------------------


def _month_start(day_: date, back: int) -> date:
    """The first day of the month `back` months before `day_`'s month."""
    y, m = divmod(day_.year * 12 + day_.month - 1 - back, 12)
    return date(y, m + 1, 1)


@dataclass
class Revenue:
    chart: Any  # Markup
    bars: list[charts.Bar]
    last_12: Decimal
    last_month: Decimal
    this_month: Decimal
    total: Decimal
    first: date
    last: date


def _revenue(db: Session, customer: Customer, today: date) -> Revenue:
    first = _month_start(today, CHART_MONTHS - 1)
    amounts = dict(queries.monthly_revenue(db, customer.id, first))
    months = [_month_start(today, back) for back in range(CHART_MONTHS - 1, -1, -1)]
    bars = []
    for i, m in enumerate(months):
        value = amounts.get(m.strftime("%Y-%m"), Decimal(0))
        bars.append(
            charts.Bar(
                label=charts.month_label(m),
                value=value,
                text=charts.money(value),
                tick=charts.month_tick(m) if m.month % 3 == 1 else "",
                # The year under each January, and under the first bar unless a January
                # follows so soon that the two would overlap.
                group=charts.year_label(m) if m.month == 1 or (i == 0 and m.month <= 9) else "",
                partial=i == len(months) - 1,
            )
        )
    values = [b.value for b in bars]
    total = sum(values, Decimal(0))
    title = tr(N_("Revenue by month, {first} to {last}"), first=bars[0].label, last=bars[-1].label)
    desc = tr(
        N_(
            "{count} monthly bars in yuan; in all {total}, the last 12 months {last_12}. "
            "The last bar is the current month so far."
        ),
        count=len(bars),
        total=charts.money(total),
        last_12=charts.money(sum(values[-12:], Decimal(0))),
    )
    chart = charts.bar_chart(bars, chart_id=f"revenue-{customer.id}", title=title, desc=desc)
    return Revenue(
        chart=chart,
        bars=bars,
        last_12=sum(values[-12:], Decimal(0)),
        last_month=values[-2],
        this_month=values[-1],
        total=total,
        first=months[0],
        last=months[-1],
    )


def _visible_or_none(db: Session, me: Me, customer_id: int) -> Customer | None:
    try:
        return customers.get_customer(db, me.viewer, customer_id)
    except NotFound:
        return None


def _timeline_items(
    db: Session, me: Me, customer_id: int, before: datetime | None, limit: int = 20
) -> tuple[list[tuple[TimelineItem, str]], datetime | None]:
    """The items with their text in the reader's language, and where older ones start."""
    items = timeline(db, me.viewer, customer_id, before, limit)
    spec = tiering.active_ruleset(db)[1]
    out = []
    for item in items:
        params = dict(item.params)
        if item.kind == "change" and params.get("fields"):
            fields = str(params["fields"]).split(", ")
            order = list(FIELD_LABELS)  # the order of the form, not the alphabet
            fields.sort(key=lambda f: order.index(f) if f in order else len(order))
            names = [tr(FIELD_LABELS.get(f, f)) for f in fields]
            params["fields"] = format_list(names, locale=i18n.get_locale())
        if item.kind == "tier" and "reason" in params:
            params["reason"] = reason_label(str(params["reason"]), spec)
        if item.ref and item.ref.startswith("/tiering/") and not me.viewer.is_admin:
            item = replace(item, ref=None)  # runs are an administrator's pages
        out.append((item, tr(item.title, **params)))
    more = items[-1].at if len(items) == limit else None
    return out, more


def _contact_values(c: Contact | None = None) -> dict[str, Any]:
    if c is None:
        return {
            "name": "",
            "title": "",
            "phone": "",
            "email": "",
            "preferred_channel": "phone",
            "locale": "zh_CN",
            "portal_access": False,
            "is_group_admin": False,
        }
    values: dict[str, Any] = {f: getattr(c, f) or "" for f in CONTACT_TEXT}
    values.update({f: bool(getattr(c, f)) for f in CONTACT_FLAGS})
    return values


def _page(
    request: Request,
    db: Session,
    me: Me,
    customer_id: int,
    *,
    status: int = 200,
    contact_form: Form | None = None,
    edit_contact: int | None = None,
    contact_edit_form: Form | None = None,
    revenue_form: Form | None = None,
    pin_form: Form | None = None,
) -> Response:
    customer = customers.get_customer(db, me.viewer, customer_id)  # out of view: 404
    q = request.query_params
    tree_ = visible_tree(db, me)
    spec = tiering.active_ruleset(db)[1]
    ancestors = [(cid, _visible_or_none(db, me, cid)) for cid in tree.ancestor_ids(customer.path)]
    branches = paginate(
        db,
        queries.customers(db, me.viewer, parent_id=customer.id),
        key=(Customer.name, Customer.id),
        limit=20,
    )
    contacts = all_rows(db, queries.contacts(customer.id), key=Contact.id, cap=500)
    if edit_contact is None and _int(q.get("contact", "")) is not None:
        edit_contact = int(q["contact"])
    editing = next((c for c in contacts if c.id == edit_contact), None)
    records = paginate(
        db,
        queries.revenue(customer.id),
        key=(RevenueRecord.date, RevenueRecord.id),
        limit=12,
        cursor=q.get("rcursor") or None,
        descending=True,
    )
    history = paginate(
        db,
        tiering.history(db, me.viewer, customer.id),
        key=TierHistory.id,
        limit=10,
        cursor=q.get("hcursor") or None,
        descending=True,
    )
    items, older = _timeline_items(db, me, customer.id, None)
    levels = _level_names(db)
    version = levels.get(customer.service_level or "")
    industries: dict[str, Industry] = {i.code: i for i in queries.industries(db)}
    industry = industries.get(customer.industry_code or "")
    english = i18n.get_locale() == "en"
    unit = tree_.by_id.get(customer.owning_unit_id) or db.get(Unit, customer.owning_unit_id)
    today = now().date()
    ctx: dict[str, Any] = {
        "customer": customer,
        "ancestors": ancestors,
        "unit": unit,
        "unit_in_view": customer.owning_unit_id in tree_.by_id,
        "manager": db.get(Staff, customer.account_manager_id)
        if customer.account_manager_id
        else None,
        "industry_name": (industry.name_en if english else industry.name_zh)
        if industry
        else customer.industry_code,
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "languages": dict(LANGUAGES),
        "branches": branches.items,
        "more_branches": bool(branches.next_cursor),
        "contacts": contacts,
        "portal_states": portal_service.account_states(db, [c.id for c in contacts]),
        "editing": editing,
        "contact_form": contact_form or Form(_contact_values(), key="contact-new"),
        "contact_edit_form": contact_edit_form
        or (Form(_contact_values(editing), key=f"contact-{editing.id}") if editing else None),
        "channel_options": [(k, tr(v)) for k, v in CHANNEL_LABELS.items()],
        "language_options": list(LANGUAGES),
        "revenue": _revenue(db, customer, today),
        "records": records.items,
        "records_next": url_with(request, rcursor=records.next_cursor)
        if records.next_cursor
        else None,
        "records_first": url_with(request, rcursor=None) if q.get("rcursor") else None,
        "revenue_form": revenue_form
        or Form(
            {"date": today.isoformat(), "amount": "", "business_line": "", "source_ref": ""},
            key="revenue",
        ),
        "reason": reason_label(customer.tier_rule, spec, customer.pin_reason),
        "level_version": version,
        "level_title": level_name(version),
        "entitlements": [x for x in (content_label(i) for i in version.content) if x]
        if version
        else [],
        "can_pin": me.viewer.has_role("manager"),
        "pin_form": pin_form or Form({"tier": customer.tier or "", "reason": ""}, key="pin"),
        "tier_options": TIER_OPTIONS,
        "history": history.items,
        "history_reason": lambda r: reason_label(r, spec),
        "history_next": url_with(request, hcursor=history.next_cursor)
        if history.next_cursor
        else None,
        "history_first": url_with(request, hcursor=None) if q.get("hcursor") else None,
        "units_by_id": tree_.by_id,
        "timeline": items,
        "older": older,
    }
    return render(request, "customers/detail.html", ctx, status=status)


@router.get("/customers/{customer_id}")
def customer_page(customer_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _page(request, db, me, customer_id)


@router.get("/customers/{customer_id}/timeline")
def customer_timeline(
    customer_id: int, request: Request, me: CurrentMe, db: Db, before: str = ""
) -> Response:
    customer = customers.get_customer(db, me.viewer, customer_id)  # out of view: 404
    try:
        start = datetime.fromisoformat(before) if before else None
    except ValueError:
        start = None
    items, older = _timeline_items(db, me, customer.id, start)
    return render(
        request,
        "customers/timeline.html",
        {"customer": customer, "timeline": items, "older": older},
        fragment="older",
    )


# --- contacts -------------------------------------------------------------------------------------


def _contact_input(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {f: text(form, f) for f in CONTACT_TEXT}
    values.update({f: text(form, f) == "1" for f in CONTACT_FLAGS})
    return values


def _contact_data(values: dict[str, Any]) -> dict[str, Any]:
    data = dict(values)
    for name in ("title", "phone", "email"):
        data[name] = optional(values[name].strip())
    return data


@router.post("/customers/{customer_id}/contacts")
def add_contact(
    customer_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = _contact_input(form)
    try:
        with db.begin_nested():
            data = parse(ContactCreate, _contact_data(values))
            customers.add_contact(db, me.viewer, customer_id, data)  # out of view: 404
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, _friendly(exc.errors, values), key="contact-new")
        return _page(request, db, me, customer_id, status=422, contact_form=bad)
    return redirect(request, f"/customers/{customer_id}?notice=created#contacts")


@router.post("/customers/{customer_id}/contacts/{contact_id}")
def edit_contact(
    customer_id: int, contact_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = _contact_input(form)
    try:
        with db.begin_nested():
            data = parse(ContactUpdate, _contact_data(values))
            customers.update_contact(db, me.viewer, customer_id, contact_id, data)
    except Invalid as exc:
        db.expire_all()
        customers.get_contact(db, me.viewer, customer_id, contact_id)  # out of view: 404
        bad = Form(values, _friendly(exc.errors, values), key=f"contact-{contact_id}")
        return _page(
            request,
            db,
            me,
            customer_id,
            status=422,
            edit_contact=contact_id,
            contact_edit_form=bad,
        )
    return redirect(request, f"/customers/{customer_id}?notice=saved#contacts")


@router.post("/customers/{customer_id}/contacts/{contact_id}/delete")
def delete_contact(
    customer_id: int, contact_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    customers.delete_contact(db, me.viewer, customer_id, contact_id)  # out of view: 404
    return redirect(request, f"/customers/{customer_id}?notice=deleted#contacts")


# --- revenue, pins -----------------------------------------------------------------------------


@router.post("/customers/{customer_id}/revenue")
def add_revenue(
    customer_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = {
        "date": text(form, "date").strip(),
        "amount": text(form, "amount").strip(),
        "business_line": text(form, "business_line"),
        "source_ref": text(form, "source_ref"),
    }
    # People type amounts as they see them: "¥12,345.60" is 12345.60.
    amount = values["amount"].replace(",", "").replace("，", "").replace("¥", "").strip()
    try:
        with db.begin_nested():
            if amount:
                try:
                    negative = Decimal(amount) < 0
                except InvalidOperation:
                    raise Invalid.field("amount", N_("Must be a number.")) from None
                if negative:  # (the schema's own message would lose its Decimal bound)
                    raise Invalid.field("amount", N_("Must be at least {ge}."), ge=0)
            data = parse(
                RevenueCreate,
                {
                    **values,
                    "date": values["date"] or None,
                    "amount": amount or None,
                    "source_ref": optional(values["source_ref"].strip()),
                },
            )
            customers.add_revenue(db, me.viewer, customer_id, data)  # out of view: 404
    except Invalid as exc:
        db.expire_all()
        errors = _friendly(exc.errors, values)
        errors = [
            FieldError(e.field, N_("This field is required."))
            if e.field in ("date", "amount") and not values[e.field]
            else e
            for e in errors
        ]
        bad = Form(values, errors, key="revenue")
        return _page(request, db, me, customer_id, status=422, revenue_form=bad)
    return redirect(request, f"/customers/{customer_id}?notice=created#records")


@router.post("/customers/{customer_id}/pin")
def pin(customer_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = {"tier": text(form, "tier"), "reason": text(form, "reason")}
    try:
        with db.begin_nested():
            customers.get_customer(db, me.viewer, customer_id)  # out of view: 404, first
            data = parse(PinIn, values)
            tiering.pin_customer(db, me.viewer, customer_id, data.tier, data.reason)
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, _friendly(exc.errors, values), key="pin")
        return _page(request, db, me, customer_id, status=422, pin_form=bad)
    return redirect(request, f"/customers/{customer_id}?notice=pinned#tier")


@router.post("/customers/{customer_id}/unpin")
def unpin(customer_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    tiering.unpin_customer(db, me.viewer, customer_id)  # out of view: 404
    return redirect(request, f"/customers/{customer_id}?notice=unpinned#tier")
