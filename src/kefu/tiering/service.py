"""Tiering runs, set-based: one INSERT … SELECT with window functions computes every
customer's proposal; applying is one INSERT … SELECT into the history and one UPDATE … FROM.
No Python loop touches customers one by one, so a million customers stay fast."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from kefu.audit.service import record
from kefu.clock import now
from kefu.customers.models import Customer, RevenueRecord
from kefu.db import is_postgres
from kefu.errors import Conflict, Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.notifications.service import json_object, notify_many
from kefu.scope import Viewer, get_visible
from kefu.tiering import policy
from kefu.tiering.models import TierHistory, TieringProposal, TieringRuleset, TieringRun
from kefu.units.models import Unit


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may run or change tiering."))


# --- rulesets -------------------------------------------------------------------------------


def active_ruleset(session: Session) -> tuple[TieringRuleset | None, policy.Ruleset]:
    row = session.scalars(select(TieringRuleset).order_by(TieringRuleset.version.desc())).first()
    if row is None:
        return None, policy.DEFAULT
    return row, policy.Ruleset.model_validate(row.rules)


def rulesets(session: Session) -> list[TieringRuleset]:
    return list(session.scalars(select(TieringRuleset).order_by(TieringRuleset.version.desc())))


def save_ruleset(
    session: Session, viewer: Viewer, rules: policy.Ruleset, note: str = ""
) -> TieringRuleset:
    """A new version (validated by the schema: coverage and bands); it becomes active."""
    _require_admin(viewer)
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('kefu.tiering.ruleset'))"))
    version = (session.scalar(select(func.max(TieringRuleset.version))) or 0) + 1
    row = TieringRuleset(
        version=version,
        rules=rules.model_dump(mode="json"),
        note=note,
        created_at=now(),
        created_by=viewer.username,
    )
    session.add(row)
    session.flush()
    record(
        session,
        viewer,
        "tiering.ruleset",
        "tiering_ruleset",
        row.id,
        {
            "version": {"before": version - 1 or None, "after": version},
            "rules": {"before": None, "after": row.rules},
        },
    )
    return row


# --- runs -----------------------------------------------------------------------------------


def _months_before(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)).day
    return date(y, m, min(day.day, last))


def _root_id(session: Session, path: Any) -> ColumnElement[int]:
    """The id of the top customer of a group, read off the materialised path."""
    if is_postgres(session):
        return cast(func.split_part(path, "/", 2), Integer)
    return cast(func.substr(path, 2, func.instr(func.substr(path, 2), "/") - 1), Integer)


def start_run(
    session: Session,
    viewer: Viewer,
    run_date: date | None = None,
    rules: policy.Ruleset | None = None,
) -> TieringRun:
    """A dry run: compute every customer's proposal and a summary. Nothing changes yet.

    With `rules` given, the run previews an unsaved ruleset."""
    _require_admin(viewer)
    saved, active = active_ruleset(session)
    spec = rules or active
    run_date = run_date or now().date()
    run = TieringRun(
        ruleset_id=saved.id if saved and rules is None else None,
        rules=spec.model_dump(mode="json"),
        is_preview=rules is not None,
        run_date=run_date,
        status="dry_run",
        created_at=now(),
        created_by=viewer.username,
    )
    session.add(run)
    session.flush()
    if is_postgres(session):
        # The window sorts and hash joins of a large run spill to disk at the default 4 MB;
        # JIT would spend 1-3 s compiling the one big statement (measured), for no gain.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        session.execute(text("SET LOCAL jit = off"))
    session.execute(_proposals_insert(session, run.id, run_date, spec))
    if is_postgres(session):
        # Fresh statistics, or the planner takes a million proposals for a few thousand.
        session.execute(text("ANALYZE tiering_proposals"))
    run.summary = summarise(session, run.id)
    record(
        session,
        viewer,
        "tiering.run",
        "tiering_run",
        run.id,
        {
            "run_date": {"before": None, "after": run_date.isoformat()},
            "summary": {"before": None, "after": run.summary["tiers"]},
        },
    )
    session.flush()
    return run


def _proposals_insert(session: Session, run_id: int, run_date: date, spec: policy.Ruleset) -> Any:
    start = _months_before(run_date, spec.window_months)
    new_since = _months_before(run_date, spec.new_months)
    rr = RevenueRecord
    agg = (
        select(
            rr.customer_id.label("customer_id"),
            func.sum(case((rr.date > start, rr.amount), else_=0)).label("rev"),
            func.min(rr.date).label("first_date"),
        )
        .where(rr.date <= run_date)
        .group_by(rr.customer_id)
        .subquery("agg")
    )
    c = Customer
    # The tops of the group trees (a branch's path starts with its group's id).
    groups = select(c.id).where(c.is_group == true()).subquery("root")
    # Cities a group spans (head and branches): more than one makes it province-level.
    roots = (
        select(
            _root_id(session, c.path).label("root_id"),
            func.substr(c.region_code, 1, 4).label("city"),
        )
        .where(or_(c.parent_id.is_not(None), c.is_group == true()))
        .subquery("roots")
    )
    spans = (
        select(roots.c.root_id, func.count(func.distinct(roots.c.city)).label("cities"))
        .group_by(roots.c.root_id)
        .subquery("spans")
    )
    rev = func.coalesce(agg.c.rev, 0)
    base = (
        select(
            c.id.label("customer_id"),
            c.tier.label("old_tier"),
            c.service_level.label("old_level"),
            c.owning_unit_id.label("old_unit_id"),
            c.region_code,
            c.is_important,
            c.is_potential,
            c.tier_pinned,
            c.tier.label("pinned_tier"),
            and_(c.is_group, c.parent_id.is_(None)).label("group_head"),
            and_(c.parent_id.is_not(None), groups.c.id.is_not(None)).label("branch"),
            (agg.c.first_date > new_since).label("new"),
            func.coalesce(spans.c.cities, 1).label("cities"),
            rev.label("rev"),
            func.sum(rev).over().label("total"),
            (
                func.sum(rev).over(order_by=rev.desc(), range_=(None, 0))
                - rev * func.count().over(partition_by=rev)
            ).label("above"),
        )
        .select_from(c)
        .outerjoin(agg, agg.c.customer_id == c.id)
        .outerjoin(groups, groups.c.id == _root_id(session, c.path))
        .outerjoin(spans, spans.c.root_id == c.id)
        .subquery("base")
    )
    b = base.c
    bands = {
        "top_band": and_(b.rev > 0, b.above < b.total * float(spec.top_share)),
        "middle_band": and_(b.rev > 0, b.above < b.total * float(spec.middle_share)),
    }
    conds: dict[str, ColumnElement[bool]] = {
        "important": b.is_important == true(),
        "group_head": b.group_head == true(),
        "branch": b.branch == true(),
        "new": func.coalesce(b.new, false()) == true(),
        "potential": b.is_potential == true(),
        "always": true(),
        **bands,
    }
    whens = [
        (conds[cond], literal(f"{rule.tier}:{cond}")) for rule in spec.rules for cond in rule.any
    ]
    fired = case(*whens, else_=literal("C:always"))
    rule_col = case((b.tier_pinned == true(), literal("pinned")), else_=fired)
    tier_col = case(
        (and_(b.tier_pinned == true(), b.pinned_tier.is_not(None)), b.pinned_tier),
        else_=func.substr(fired, 1, 1),
    )
    # The median revenue of all C customers splits C between two levels: C rows numbered by
    # a running count in revenue order (the order `base` is already in: no further sort),
    # then the middle one or two averaged over all rows.
    one_if_c = case((tier_col == "C", 1), else_=0)
    decided = select(
        base,
        rule_col.label("rule"),
        tier_col.label("new_tier"),
        func.sum(one_if_c).over(order_by=b.rev, rows=(None, 0)).label("c_rank"),
        func.sum(one_if_c).over().label("c_count"),
    ).subquery("decided")
    d = decided.c
    middle = and_(d.new_tier == "C", d.c_rank.in_([(d.c_count + 1) // 2, (d.c_count + 2) // 2]))
    c_median = func.avg(case((middle, d.rev))).over()
    lv = spec.levels
    new_level = case(
        (and_(d.new_tier == "A", d.is_important == true()), lv.a_important),
        (d.new_tier == "A", lv.a),
        (d.new_tier == "B", lv.b),
        (d.rev >= c_median, lv.c_upper),
        else_=lv.c_lower,
    )
    # One unit per region code (the highest one, should several share it).
    per_region = (
        select(Unit.region_code, func.min(Unit.id).label("unit_id"))
        .where(Unit.is_active.is_(True))
        .group_by(Unit.region_code)
        .subquery("rg")
    )
    county = aliased(per_region, name="county_u")
    city = aliased(per_region, name="city_u")
    province = aliased(per_region, name="province_u")
    province_level = and_(d.group_head == true(), d.cities > 1) if spec.province_groups else false()
    new_unit = case(
        (province_level, func.coalesce(province.c.unit_id, city.c.unit_id, d.old_unit_id)),
        (d.new_tier == "A", func.coalesce(city.c.unit_id, d.old_unit_id)),
        else_=func.coalesce(county.c.unit_id, d.old_unit_id),
    )
    proposals = (
        select(
            literal(run_id).label("run_id"),
            d.customer_id,
            d.old_tier,
            cast(d.new_tier, String(1)).label("new_tier"),
            d.old_level,
            cast(new_level, String(4)).label("new_level"),
            d.old_unit_id,
            new_unit.label("new_unit_id"),
            d.rule,
            d.rev.label("revenue_12m"),
            d.is_important,
        )
        .select_from(decided)
        .outerjoin(county, county.c.region_code == d.region_code)
        .outerjoin(city, city.c.region_code == func.substr(d.region_code, 1, 4) + "00")
        .outerjoin(province, province.c.region_code == func.substr(d.region_code, 1, 2) + "0000")
    )
    cols = [
        "run_id",
        "customer_id",
        "old_tier",
        "new_tier",
        "old_level",
        "new_level",
        "old_unit_id",
        "new_unit_id",
        "rule",
        "revenue_12m",
        "is_important",
    ]
    return insert(TieringProposal).from_select(cols, proposals)


def summarise(session: Session, run_id: int) -> dict[str, Any]:
    """Counts per tier, level, move and rule: one scan of the run's proposals."""
    p = TieringProposal
    moved = p.old_unit_id != p.new_unit_id
    rows = session.execute(
        select(p.old_tier, p.new_tier, p.new_level, p.rule, moved, func.count())
        .where(p.run_id == run_id)
        .group_by(p.old_tier, p.new_tier, p.new_level, p.rule, moved)
    ).all()
    tiers: dict[str, int] = {}
    levels: dict[str | None, int] = {}
    moves: dict[tuple[str | None, str], int] = {}
    rules: dict[str, int] = {}
    unit_moves = 0
    for old_tier, new_tier, new_level, rule, unit_moved, n in rows:
        tiers[new_tier] = tiers.get(new_tier, 0) + n
        levels[new_level] = levels.get(new_level, 0) + n
        rules[rule] = rules.get(rule, 0) + n
        if old_tier != new_tier:
            moves[(old_tier, new_tier)] = moves.get((old_tier, new_tier), 0) + n
        unit_moves += n if unit_moved else 0
    return {
        "customers": sum(tiers.values()),
        "tiers": {t: tiers.get(t, 0) for t in "ABC"},
        "levels": {k: levels.get(k, 0) for k in ("5A", "4A", "3A", "2A", "1A")},
        "tier_moves": [
            {"from": f, "to": t, "count": n}
            for (f, t), n in sorted(moves.items(), key=lambda m: (m[0][0] or "", m[0][1]))
        ],
        "ownership_moves": unit_moves,
        "rules": rules,
    }


def get_run(session: Session, viewer: Viewer, run_id: int, for_update: bool = False) -> TieringRun:
    _require_admin(viewer)
    stmt = select(TieringRun).where(TieringRun.id == run_id)
    if for_update:
        stmt = stmt.with_for_update()
    run = session.scalars(stmt).first()
    if run is None:
        raise NotFound()
    return run


def proposals(run_id: int, changed_only: bool = False, tier: str | None = None) -> Any:
    p = TieringProposal
    stmt = select(p).where(p.run_id == run_id)
    if changed_only:
        stmt = stmt.where(
            or_(
                p.old_tier.is_distinct_from(p.new_tier),
                p.old_level.is_distinct_from(p.new_level),
                p.old_unit_id != p.new_unit_id,
            )
        )
    if tier:
        stmt = stmt.where(p.new_tier == tier)
    return stmt


def apply_run(session: Session, viewer: Viewer, run_id: int) -> TieringRun:
    """Apply a dry run atomically: history rows for every change, then one UPDATE."""
    run = get_run(session, viewer, run_id, for_update=True)
    if run.status != "dry_run":
        raise Conflict(N_("This run was applied or discarded already."))
    if run.is_preview:
        raise Invalid.field(
            "ruleset", N_("A preview of unsaved rules cannot be applied; save the ruleset first.")
        )
    newer = session.scalar(
        select(func.count()).where(TieringRun.id > run.id, TieringRun.status == "applied")
    )
    if newer:
        raise Conflict(N_("A newer run has been applied since; start a new run."))
    at = now()
    if is_postgres(session):
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    p, c = TieringProposal, Customer
    # Pins made after the run keep their tier.
    keep_pin = and_(c.tier_pinned == true(), c.tier.is_not(None))
    to_tier = case((keep_pin, c.tier), else_=p.new_tier)
    changed = or_(
        c.tier.is_distinct_from(to_tier),
        c.service_level.is_distinct_from(p.new_level),
        c.owning_unit_id != p.new_unit_id,
    )
    reason = case((keep_pin, literal("pinned")), else_=p.rule)
    session.execute(
        insert(TierHistory).from_select(
            [
                "customer_id",
                "run_id",
                "from_tier",
                "to_tier",
                "from_level",
                "to_level",
                "from_unit_id",
                "to_unit_id",
                "reason",
                "actor",
                "at",
            ],
            select(
                c.id,
                literal(run.id),
                c.tier,
                to_tier,
                c.service_level,
                p.new_level,
                c.owning_unit_id,
                p.new_unit_id,
                reason,
                literal(viewer.username),
                literal(at),
            )
            .select_from(p)
            .join(c, c.id == p.customer_id)
            .where(p.run_id == run.id, changed),
        )
    )
    # For integrations (webhooks, robots): one event per customer whose tier, level or owner
    # changed, from the history rows just written.
    h = TierHistory
    ident = cast(h.customer_id, String)
    notify_many(
        session,
        "tier.changed",
        select(h.id).where(h.run_id == run.id),  # a run is applied once
        recipient=literal("unit:", String) + cast(h.to_unit_id, String),
        payload=json_object(
            session,
            {
                "customer_id": h.customer_id,
                "run_id": h.run_id,
                "from_tier": h.from_tier,
                "to_tier": h.to_tier,
                "from_level": h.from_level,
                "to_level": h.to_level,
                "from_unit_id": h.from_unit_id,
                "to_unit_id": h.to_unit_id,
                "reason": h.reason,
            },
        ),
        dedupe_key=literal(f"tier.changed:{run.id}:", String) + ident,
    )
    # Only the customers whose stored facts change are rewritten: every rewritten row costs
    # a write into each index of the table.
    rule = case((keep_pin, literal("pinned")), else_=p.rule)
    session.execute(
        update(c)
        .where(
            c.id == p.customer_id,
            p.run_id == run.id,
            or_(
                changed,
                c.tier_rule.is_distinct_from(rule),
                c.revenue_12m.is_distinct_from(p.revenue_12m),
            ),
        )
        .values(
            tier=case((keep_pin, c.tier), else_=p.new_tier),
            service_level=p.new_level,
            tier_rule=case((keep_pin, literal("pinned")), else_=p.rule),
            owning_unit_id=p.new_unit_id,
            revenue_12m=p.revenue_12m,
            updated_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    run.status = "applied"
    run.applied_at = at
    run.applied_by = viewer.username
    record(
        session,
        viewer,
        "tiering.apply",
        "tiering_run",
        run.id,
        {
            "status": {"before": "dry_run", "after": "applied"},
            "summary": {"before": None, "after": run.summary.get("tiers")},
        },
    )
    session.flush()
    return run


def last_applied(session: Session) -> TieringRun | None:
    return session.scalars(
        select(TieringRun).where(TieringRun.status == "applied").order_by(TieringRun.id.desc())
    ).first()


# --- pins and history -----------------------------------------------------------------------


def pin_customer(
    session: Session, viewer: Viewer, customer_id: int, tier: str, reason: str
) -> Customer:
    """A manager fixes a customer's tier; runs keep it until it is unpinned."""
    customer = get_visible(session, Customer, customer_id, viewer, for_update=True)
    if not viewer.has_role("manager"):
        raise Forbidden(N_("Only managers may pin a customer's tier."))
    _, spec = active_ruleset(session)
    level = policy.level_for(
        tier, customer.is_important, customer.service_level == spec.levels.c_upper, spec.levels
    )
    session.add(
        TierHistory(
            customer_id=customer.id,
            run_id=None,
            from_tier=customer.tier,
            to_tier=tier,
            from_level=customer.service_level,
            to_level=level,
            from_unit_id=customer.owning_unit_id,
            to_unit_id=customer.owning_unit_id,
            reason=f"pinned: {reason}"[:600],
            actor=viewer.username,
            at=now(),
        )
    )
    before = {
        "tier": customer.tier,
        "tier_pinned": customer.tier_pinned,
        "service_level": customer.service_level,
    }
    customer.tier, customer.service_level = tier, level
    customer.tier_pinned, customer.pin_reason, customer.tier_rule = True, reason, "pinned"
    session.flush()
    record(
        session,
        viewer,
        "customer.pin",
        "customer",
        customer.id,
        {k: {"before": v, "after": getattr(customer, k)} for k, v in before.items()}
        | {"pin_reason": {"before": None, "after": reason}},
    )
    return customer


def unpin_customer(session: Session, viewer: Viewer, customer_id: int) -> Customer:
    customer = get_visible(session, Customer, customer_id, viewer, for_update=True)
    if not viewer.has_role("manager"):
        raise Forbidden(N_("Only managers may pin a customer's tier."))
    if customer.tier_pinned:
        customer.tier_pinned, customer.pin_reason = False, None
        record(
            session,
            viewer,
            "customer.unpin",
            "customer",
            customer.id,
            {"tier_pinned": {"before": True, "after": False}},
        )
        session.flush()
    return customer


def history(session: Session, viewer: Viewer, customer_id: int) -> Any:
    customer = get_visible(session, Customer, customer_id, viewer)
    return select(TierHistory).where(TierHistory.customer_id == customer.id)
