"""Routing: which unit handles a new ticket and who gets it, from the admin's ordered rules.

The one code path of intake (`open_ticket`) and of the admin's preview ("test this rule"):
both call `route()`, which only reads. The rules are tried in their order (position, then
id); a rule whose condition holds and that finds a unit decides the handling unit, so the
first such rule wins and the rules after it are not looked at. A rule that holds but finds
no unit (no unit has the function, no unit serves the region) is passed over. With no rule
deciding, the customer's owning unit handles the ticket.

- `category_function`: tickets of a category go to the nearest unit, from the owning unit
  upwards, that has the function (e.g. technical support at the city).
- `site_region`: on-site jobs (categories marked on-site) whose site lies in another
  region go to the deepest active unit of that region — linked service: the owning unit
  keeps visibility and is told. Limited to one category when the rule names one.

Inside the handling unit: the customer's account manager when they work there and are
active, else the active agent with the least open work weighted by priority.

Every step is explained in `Route.trace`: (rule id, outcome, msgid, params), so the admin
page and the API can say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from kefu import cache, tree
from kefu.audit.service import diff, record, snapshot
from kefu.customers.models import Customer
from kefu.db import padded
from kefu.errors import FieldError, Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer, condition
from kefu.staff.models import Staff, StaffRole
from kefu.tickets import policy
from kefu.tickets.models import OPEN, Category, RoutingRule, Ticket
from kefu.tickets.schemas import RoutePreviewIn, RoutingRuleCreate, RoutingRuleUpdate
from kefu.units.models import Unit, UnitFunction

KINDS = ("category_function", "site_region")

# Outcomes of one rule in a trace.
APPLIED, PASSED, NOT_MATCHING, DISABLED, NOT_REACHED = (
    "applied",
    "passed",
    "not_matching",
    "disabled",
    "not_reached",
)


@dataclass
class Step:
    rule_id: int | None
    outcome: str
    message: str  # msgid with {placeholders}
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Route:
    handling_unit_id: int
    rule: str  # owning_unit | site_region | category_function:<function>
    assignee_id: int | None
    assign_rule: str  # account_manager | least_loaded | unassigned
    rule_id: int | None = None
    trace: list[Step] = field(default_factory=list)


def unit_with_function(session: Session, owning_unit_id: int, function: str) -> int | None:
    """The nearest unit, from the owning unit upwards, that has `function`."""

    def read() -> int | None:
        path = session.scalar(select(Unit.path).where(Unit.id == owning_unit_id)) or ""
        found = _units_with_functions(session, {owning_unit_id: path}, {function})
        return found[(owning_unit_id, function)]

    return cache.configuration(session, ("unit_with_function", owning_unit_id, function), read)


def _units_with_functions(
    session: Session, owning: dict[int, str], functions: set[str]
) -> dict[tuple[int, str], int | None]:
    """{(owning unit, function): the nearest active unit from it upwards with the function}
    for owning units (by id: path), in one query."""
    chains = {u: [*tree.ancestor_ids(p), u] for u, p in owning.items()}
    depth_of = {
        (unit_id, function): depth
        for unit_id, function, depth in session.execute(
            select(UnitFunction.unit_id, UnitFunction.function, Unit.depth)
            .join(Unit, Unit.id == UnitFunction.unit_id)
            .where(
                UnitFunction.unit_id.in_(padded(u for c in chains.values() for u in c)),
                UnitFunction.function.in_(padded(functions)),
                Unit.is_active.is_(True),
            )
        )
    }
    out: dict[tuple[int, str], int | None] = {}
    for owner, chain in chains.items():
        for function in functions:
            found = [(depth_of[(u, function)], u) for u in chain if (u, function) in depth_of]
            out[(owner, function)] = max(found)[1] if found else None
    return out


def unit_of_region(session: Session, region_code: str) -> int | None:
    """The deepest active unit serving a region (the lowest id among equals)."""
    return cache.configuration(
        session,
        ("unit_of_region", region_code),
        lambda: _units_of_regions(session, {region_code})[region_code],
    )


def _units_of_regions(session: Session, regions: set[str]) -> dict[str, int | None]:
    deepest: dict[str, tuple[int, int]] = {}
    for region, unit_id, depth in session.execute(
        select(Unit.region_code, Unit.id, Unit.depth).where(
            Unit.region_code.in_(padded(regions)), Unit.is_active.is_(True)
        )
    ):
        best = deepest.get(region)
        if best is None or (-depth, unit_id) < (-best[1], best[0]):
            deepest[region] = (unit_id, depth)
    return {r: deepest[r][0] if r in deepest else None for r in regions}


def manager_units(session: Session, staff_ids: set[int]) -> dict[int, int | None]:
    """{account manager: the unit they work in, None if not active}, in one query."""
    works_in = dict(
        session.execute(
            select(Staff.id, Staff.unit_id).where(
                Staff.id.in_(padded(staff_ids)), Staff.is_active.is_(True)
            )
        ).all()
    )
    return {m: works_in.get(m) for m in staff_ids}


def read_ahead(
    session: Session, owning: dict[int, str], sites: set[str], managers: set[int]
) -> set[int]:
    """For a batch of intakes (inside a `reads_once` block): what routing will ask about
    these owning units (by id: path), site regions and account managers, read in three
    queries instead of a few per ticket. Returns the units that may end up handling."""
    memo = cache.memo(session)
    if memo is None:
        return set(owning)
    units = set(owning)
    functions = {
        r.function
        for r in rules(session)
        if r.is_active and r.kind == "category_function" and r.function
    }
    wanted = {
        owner: path
        for owner, path in owning.items()
        if not all(cache.known(session, ("unit_with_function", owner, f)) for f in functions)
    }
    if wanted:
        for (owner, function), unit in _units_with_functions(session, wanted, functions).items():
            cache.keep(session, ("unit_with_function", owner, function), unit)
    for owner in owning:
        units.update(memo[("unit_with_function", owner, f)] for f in functions)
    if sites and any(r.is_active and r.kind == "site_region" for r in rules(session)):
        unknown = {s for s in sites if not cache.known(session, ("unit_of_region", s))}
        if unknown:
            for region, unit in _units_of_regions(session, unknown).items():
                cache.keep(session, ("unit_of_region", region), unit)
        units.update(memo[("unit_of_region", s)] for s in sites)
    units.discard(None)  # type: ignore[arg-type]
    managers = {m for m in managers if ("manager_unit", m) not in memo}
    if managers:
        for manager_id, unit in manager_units(session, managers).items():
            memo.setdefault(("manager_unit", manager_id), unit)
    return units


def _load() -> Any:
    """An agent's open work weighted by priority, summed over their own open tickets
    (index on assignee and state): the cost grows with the unit's open work, not with
    every open ticket there is."""
    weight = case(*[(Ticket.priority == p, w) for p, w in policy.PRIORITY_WEIGHT.items()], else_=1)
    return (
        select(func.coalesce(func.sum(weight), 0))
        # The open states as literals: a prepared statement's generic plan can then use the
        # partial index on open work per assignee (with parameters PostgreSQL planned the
        # query anew at every execution, 0.6 ms).
        .where(Ticket.assignee_id == Staff.id, OPEN)
        .correlate(Staff)
        .scalar_subquery()
    )


def agent_loads(session: Session, unit_id: int) -> dict[int, int]:
    """{agent id: open work weighted by priority} for the active agents of the unit."""
    return read_agent_loads(session, [unit_id])[unit_id]


def read_agent_loads(session: Session, unit_ids: list[int]) -> dict[int, dict[int, int]]:
    """`agent_loads` of many units in one query; inside a `reads_once` block (a batch of
    intakes) they are kept for `least_loaded_agent`."""
    loads: dict[int, dict[int, int]] = {unit_id: {} for unit_id in unit_ids}
    rows = session.execute(
        select(Staff.unit_id, Staff.id, _load())
        .join(StaffRole, and_(StaffRole.staff_id == Staff.id, StaffRole.role == "agent"))
        .where(Staff.unit_id.in_(padded(loads)), Staff.is_active.is_(True))
    )
    for unit_id, staff_id, load in rows:
        loads[unit_id][staff_id] = load
    memo = cache.memo(session)
    if memo is not None:
        for unit_id, by_agent in loads.items():
            memo.setdefault(("agent_loads", unit_id), by_agent)
    return loads


def least_loaded_agent(session: Session, unit_id: int, priority: str | None = None) -> int | None:
    """The active agent of the unit with the least open work (the lowest id on a tie).

    Inside a `reads_once` block (a batch of intakes) the loads are read once and the work
    given out meanwhile (`priority` of the ticket being routed) is added as it goes."""
    loads = cache.once(session, ("agent_loads", unit_id), lambda: agent_loads(session, unit_id))
    if not loads:
        return None
    agent = min(loads, key=lambda staff_id: (loads[staff_id], staff_id))
    if cache.memo(session) is not None and priority is not None:
        loads[agent] += policy.PRIORITY_WEIGHT.get(priority, 1)
    return agent


def rules(session: Session) -> list[RoutingRule]:
    """Every rule in the order routing tries them."""
    return cache.configuration(
        session,
        "routing_rules",
        lambda: list(
            session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
        ),
    )


def _try(
    session: Session, rule: RoutingRule, customer: Customer, category: Category, site: str | None
) -> tuple[int | None, Step]:
    """(the unit the rule sends the ticket to, or None; the explanation)."""
    if rule.kind == "site_region":
        if rule.category_code and rule.category_code != category.code:
            return None, Step(
                rule.id,
                NOT_MATCHING,
                N_("Only for the category {category}."),
                {"category": rule.category_code},
            )
        if not category.onsite:
            return None, Step(rule.id, NOT_MATCHING, N_("The category is not an on-site job."))
        if not site:
            return None, Step(rule.id, NOT_MATCHING, N_("No site region was given."))
        local = unit_of_region(session, site)
        if local is None:
            return None, Step(
                rule.id, PASSED, N_("No active unit serves the region {region}."), {"region": site}
            )
        return local, Step(
            rule.id,
            APPLIED,
            N_("The site lies in region {region}: its unit serves the job."),
            {"region": site, "unit_id": local},
        )
    if rule.category_code != category.code:
        return None, Step(
            rule.id,
            NOT_MATCHING,
            N_("Only for the category {category}."),
            {"category": rule.category_code},
        )
    unit = unit_with_function(session, customer.owning_unit_id, rule.function or "")
    if unit is None:
        return None, Step(
            rule.id,
            PASSED,
            N_("No unit from the owning unit upwards has the function {function}."),
            {"function": rule.function},
        )
    return unit, Step(
        rule.id,
        APPLIED,
        N_("The nearest unit with the function {function} handles it."),
        {"function": rule.function, "unit_id": unit},
    )


def route(
    session: Session,
    customer: Customer,
    category: Category,
    site_region_code: str | None,
    *,
    priority: str | None = None,
) -> Route:
    """The handling unit and assignee of a new ticket, with the reasons. Reads only."""
    handling, label, decided_by = customer.owning_unit_id, "owning_unit", None
    trace: list[Step] = []
    for rule in rules(session):
        if decided_by is not None:
            trace.append(Step(rule.id, NOT_REACHED, N_("An earlier rule decided.")))
            continue
        if not rule.is_active:
            trace.append(Step(rule.id, DISABLED, N_("The rule is disabled.")))
            continue
        unit, step = _try(session, rule, customer, category, site_region_code)
        trace.append(step)
        if unit is not None:
            handling, decided_by = unit, rule.id
            label = "site_region" if rule.kind == "site_region" else f"{rule.kind}:{rule.function}"
    if decided_by is None:
        trace.append(Step(None, APPLIED, N_("No rule decided: the customer's owning unit.")))
    assignee, assign_rule = None, "unassigned"
    if customer.account_manager_id is not None:
        manager_id = customer.account_manager_id
        works_in = cache.once(
            session,
            ("manager_unit", manager_id),
            lambda: manager_units(session, {manager_id})[manager_id],
        )
        manager = manager_id if works_in == handling else None
        if manager is not None:
            assignee, assign_rule = manager, "account_manager"
            trace.append(
                Step(None, APPLIED, N_("The customer's account manager works in this unit."))
            )
        else:
            trace.append(
                Step(None, PASSED, N_("The account manager does not work in the handling unit."))
            )
    if assignee is None:
        assignee = least_loaded_agent(session, handling, priority)
        if assignee is not None:
            assign_rule = "least_loaded"
            trace.append(Step(None, APPLIED, N_("The active agent with the least open work.")))
        else:
            trace.append(Step(None, PASSED, N_("No active agent in the unit: left unassigned.")))
    return Route(handling, label, assignee, assign_rule, decided_by, trace)


# --- the admin's actions ----------------------------------------------------------------------

AUDITED = ("kind", "category_code", "function", "position", "is_active", "note")


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may change routing rules."))


def get_rule(session: Session, rule_id: int, for_update: bool = False) -> RoutingRule:
    stmt = select(RoutingRule).where(RoutingRule.id == rule_id)
    if for_update:
        stmt = stmt.with_for_update()
    rule = session.scalars(stmt).first()
    if rule is None:
        raise NotFound(params={"id": rule_id})
    return rule


def _check(session: Session, kind: str, category_code: str | None, function: str | None) -> None:
    """A rule that could never fire is refused, naming the field."""
    category = session.get(Category, category_code) if category_code else None
    if category_code and (category is None or not category.is_active):
        raise Invalid.field("category_code", N_("Unknown category."))
    if kind == "category_function":
        errors = []
        if not category_code:
            errors.append(FieldError("category_code", N_("This field is required.")))
        if not function:
            errors.append(FieldError("function", N_("This field is required.")))
        if errors:
            raise Invalid(errors=errors)
    else:
        if function:
            raise Invalid.field(
                "function", N_("A site-region rule sends to a region, not a function.")
            )
        if category is not None and not category.onsite:
            raise Invalid.field("category_code", N_("This category is not an on-site job."))


def create_rule(session: Session, viewer: Viewer, data: RoutingRuleCreate) -> RoutingRule:
    _require_admin(viewer)
    _check(session, data.kind, data.category_code, data.function)
    position = data.position
    if position is None:
        last = session.scalar(select(func.max(RoutingRule.position)))
        position = 0 if last is None else last + 1
    rule = RoutingRule(
        kind=data.kind,
        category_code=data.category_code,
        function=data.function,
        position=position,
        is_active=data.is_active,
        note=data.note,
    )
    session.add(rule)
    session.flush()
    record(
        session,
        viewer,
        "routing_rule.create",
        "routing_rule",
        rule.id,
        diff({}, snapshot(rule, AUDITED)),
    )
    return rule


def update_rule(
    session: Session, viewer: Viewer, rule_id: int, data: RoutingRuleUpdate
) -> RoutingRule:
    _require_admin(viewer)
    rule = get_rule(session, rule_id, for_update=True)
    before = snapshot(rule, AUDITED)
    fields = data.model_dump(exclude_unset=True)
    category = fields.get("category_code", rule.category_code)
    function = fields.get("function", rule.function)
    _check(session, rule.kind, category, function)
    for name, value in fields.items():
        if value is None and name in ("is_active", "note", "position"):
            continue
        setattr(rule, name, value)
    session.flush()
    changes = diff(before, snapshot(rule, AUDITED))
    if changes:
        record(session, viewer, "routing_rule.update", "routing_rule", rule.id, changes)
    return rule


def move_rule(session: Session, viewer: Viewer, rule_id: int, direction: str) -> RoutingRule:
    """One place up or down: the order is renumbered 0, 1, 2, … with the two swapped."""
    _require_admin(viewer)
    rule = get_rule(session, rule_id, for_update=True)
    ordered = rules(session)
    i = next(k for k, r in enumerate(ordered) if r.id == rule.id)
    j = i - 1 if direction == "up" else i + 1
    if not 0 <= j < len(ordered):
        return rule
    ordered[i], ordered[j] = ordered[j], ordered[i]
    before = {r.id: r.position for r in ordered}
    for k, r in enumerate(ordered):
        r.position = k
    session.flush()
    record(
        session,
        viewer,
        "routing_rule.move",
        "routing_rule",
        rule.id,
        {"position": {"before": before[rule.id], "after": rule.position}},
    )
    return rule


def delete_rule(session: Session, viewer: Viewer, rule_id: int) -> None:
    _require_admin(viewer)
    rule = get_rule(session, rule_id, for_update=True)
    record(
        session,
        viewer,
        "routing_rule.delete",
        "routing_rule",
        rule.id,
        diff(snapshot(rule, AUDITED), {}),
    )
    session.delete(rule)
    session.flush()


def preview(session: Session, viewer: Viewer, data: RoutePreviewIn) -> tuple[Route, Customer]:
    """Where a ticket of this customer, category and site would go now, and why: the same
    `route()` as intake, with the same checks of the customer and category; writes nothing."""
    customer = session.scalars(
        select(Customer).where(Customer.id == data.customer_id, condition(Customer, viewer))
    ).first()
    if customer is None:
        raise Invalid.field("customer_id", N_("No such customer."))
    category = session.get(Category, data.category_code)
    if category is None or not category.is_active:
        raise Invalid.field("category_code", N_("Unknown category."))
    return route(session, customer, category, data.site_region_code), customer


def names(session: Session, decision: Route) -> tuple[str, str | None]:
    """The handling unit's and the assignee's names, for showing a preview."""
    unit = session.scalar(select(Unit.name).where(Unit.id == decision.handling_unit_id)) or ""
    person = (
        session.scalar(select(Staff.display_name).where(Staff.id == decision.assignee_id))
        if decision.assignee_id is not None
        else None
    )
    return unit, person
