"""Key-account tiering (administrators): the active ruleset, an editor for a new version
with a preview run, dry runs with their summary and proposals, and applying a run.

Everyone else gets 404 here, as for the audit log. The labels that say why a customer has
its tier (the rule that fired) live here too; the customer pages use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.audit.models import AuditEntry
from kefu.audit.queries import audit_entries
from kefu.customers.models import Customer
from kefu.errors import FieldError, Invalid, NotFound
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.tiering import policy
from kefu.tiering import service as tiering
from kefu.tiering.models import TieringProposal, TieringRun
from kefu.tiering.schemas import RulesetSave, RunCreate
from kefu.web import charts
from kefu.web.common import (
    NOTICES,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    env,
    parse,
    redirect,
    render,
    require_role,
    text,
    tr,
    url_with,
)
from kefu.web.units import visible_tree

router = APIRouter()
env.globals.update(charts.TEMPLATE_HELPERS)
env.globals.setdefault("cx", env.get_template("customers/_macros.html").module)  # type: ignore[attr-defined]

PAGE_SIZE = 50
TIERS = ("A", "B", "C")
LEVELS = ("5A", "4A", "3A", "2A", "1A")
NOT_A_DATE = N_("Must be a date (YYYY-MM-DD).")
NOT_A_PERCENTAGE = N_("A percentage above 0 and at most 100, with at most two decimals.")
NOTICES.setdefault("applied", N_("Applied: tiers, service levels and owners are updated."))

# Conditions of the rules, as people read them ({share}: the band's share in per cent), in
# the order the editor keeps them within a rule (that of the default ruleset).
CONDITIONS = {
    "important": N_("flagged important"),
    "group_head": N_("head office of a group customer"),
    "top_band": N_("top value band (cumulative revenue share < {share} %)"),
    "branch": N_("branch of a group customer"),
    "middle_band": N_("middle value band (cumulative revenue share < {share} %)"),
    "new": N_("new customer (first revenue within {months} months)"),
    "potential": N_("marked potential"),
    "always": N_("every other customer"),
}
# The same, short, as the editor's column heads (the shares are fields of the form there).
CONDITION_HEADS = {
    "important": N_("Flagged important"),
    "group_head": N_("Group head office"),
    "top_band": N_("Top value band"),
    "branch": N_("Branch of a group"),
    "middle_band": N_("Middle value band"),
    "new": N_("Newly won"),
    "potential": N_("Marked potential"),
    "always": N_("Every other customer"),
}
REASON = N_("{tier} — {condition}")
PINNED = N_("pinned by a manager")
PINNED_BECAUSE = N_("pinned by a manager: {reason}")
# The level mapping's keys (policy.LevelMap), in the order of the tiers.
LEVEL_KEYS = (
    ("a_important", N_("A, flagged important")),
    ("a", N_("A, the others")),
    ("b", N_("B, all of them")),
    ("c_upper", N_("C, revenue at or above the median of all C customers")),
    ("c_lower", N_("C, below that median")),
)
STATUS_LABELS = {
    "dry_run": N_("Dry run"),
    "applied": N_("Applied"),
    "discarded": N_("Discarded"),
}


# --- why a customer has its tier ----------------------------------------------------------


def condition_label(condition: str, spec: policy.Ruleset) -> str:
    msgid = CONDITIONS.get(condition)
    if msgid is None:
        return condition
    share = spec.top_share if condition == "top_band" else spec.middle_share
    return tr(msgid, share=charts.percent(share), months=spec.new_months)


def reason_label(rule: str | None, spec: policy.Ruleset, pin_reason: str | None = None) -> str:
    """'A:top_band' → 'A — top value band (cumulative revenue share < 70 %)';
    'pinned' (with the customer's pin reason) or 'pinned: …' (history) → who pinned and why."""
    if not rule:
        return ""
    if rule == "pinned":
        return tr(PINNED_BECAUSE, reason=pin_reason) if pin_reason else tr(PINNED)
    if rule.startswith("pinned:"):
        return tr(PINNED_BECAUSE, reason=rule.partition(":")[2].strip())
    tier, sep, condition = rule.partition(":")
    if sep and condition in CONDITIONS:
        return tr(REASON, tier=tier, condition=condition_label(condition, spec))
    return rule


def active_spec(db: Session) -> policy.Ruleset:
    return tiering.active_ruleset(db)[1]


# --- the ruleset, readable and as a form --------------------------------------------------


def _spec_values(spec: policy.Ruleset, note: str = "") -> dict[str, Any]:
    """The editor's fields for a ruleset: one row of conditions per tier (A, B, C)."""
    rows: dict[str, list[str]] = {t: [] for t in TIERS}
    for rule in spec.rules:
        rows[rule.tier].extend(rule.any)
    values: dict[str, Any] = {
        "window_months": spec.window_months,
        "new_months": spec.new_months,
        "top_share": charts.percent(spec.top_share),
        "middle_share": charts.percent(spec.middle_share),
        "rules": None,  # errors about the rules as a whole show beside the grid
        "province_groups": spec.province_groups,
        "note": note,
    }
    values.update({f"rules_{t}": rows[t] for t in TIERS})
    values.update({f"level_{k}": getattr(spec.levels, k) for k, _ in LEVEL_KEYS})
    return values


def _simple(spec: policy.Ruleset) -> bool:
    """Whether the one-row-per-tier editor shows the ruleset exactly (tiers in order A, B, C)."""
    order = [r.tier for r in spec.rules]
    return order == sorted(order) and len(order) == len(set(order))


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        "window_months": text(form, "window_months").strip(),
        "new_months": text(form, "new_months").strip(),
        "top_share": text(form, "top_share").strip(),
        "middle_share": text(form, "middle_share").strip(),
        "rules": None,
        "province_groups": text(form, "province_groups") == "1",
        "note": text(form, "note"),
    }
    for t in TIERS:
        chosen = set(form.getlist(f"rules_{t}"))
        values[f"rules_{t}"] = [c for c in CONDITIONS if c in chosen]
    for key, _ in LEVEL_KEYS:
        values[f"level_{key}"] = text(form, f"level_{key}")
    return values


def _share(values: dict[str, Any], name: str, errors: list[FieldError]) -> Decimal | None:
    raw = str(values[name]).replace("%", "").strip()
    try:
        pct = Decimal(raw)
    except InvalidOperation:
        pct = Decimal("NaN")
    if not pct.is_finite() or not Decimal(0) < pct <= 100 or pct != pct.quantize(Decimal("0.01")):
        errors.append(FieldError(name, NOT_A_PERCENTAGE))
        return None
    return pct / 100


def _field(loc: str) -> str:
    """A schema error's field → the editor's field ('rules.levels.a' → 'level_a')."""
    name = loc.removeprefix("rules.") if loc != "rules" else "rules"
    if name.startswith("levels."):
        return "level_" + name.split(".")[1]
    if name.startswith("rules."):
        return "rules"
    return name


def _parse_ruleset(values: dict[str, Any]) -> RulesetSave:
    errors: list[FieldError] = []
    top = _share(values, "top_share", errors)
    middle = _share(values, "middle_share", errors)
    if errors:
        raise Invalid(errors=errors)
    data = {
        "rules": {
            "window_months": values["window_months"],
            "new_months": values["new_months"],
            "top_share": top,
            "middle_share": middle,
            "rules": [
                {"tier": t, "any": values[f"rules_{t}"]} for t in TIERS if values[f"rules_{t}"]
            ],
            "levels": {k: values[f"level_{k}"] for k, _ in LEVEL_KEYS},
            "province_groups": values["province_groups"],
        },
        "note": values["note"],
    }
    try:
        return parse(RulesetSave, data)
    except Invalid as exc:
        raise Invalid(
            errors=[FieldError(_field(e.field), e.message, e.params) for e in exc.errors]
        ) from exc


def _readable(spec: policy.Ruleset) -> dict[str, Any]:
    return {
        "spec": spec,
        "rules": [(r.tier, [condition_label(c, spec) for c in r.any]) for r in spec.rules],
        "levels": [(label, getattr(spec.levels, key)) for key, label in LEVEL_KEYS],
    }


# --- pages -----------------------------------------------------------------------------------


@dataclass
class RunRow:
    run: TieringRun
    entry: AuditEntry


def _recent_runs(db: Session, me: Me, limit: int = 10) -> list[RunRow]:
    """The latest runs, as the change log records them (who started each and when)."""
    page = paginate(
        db,
        audit_entries(me.viewer, action="tiering.run", object_type="tiering_run"),
        key=AuditEntry.id,
        limit=limit,
        descending=True,
    )
    rows = []
    for entry in page.items:
        try:
            rows.append(RunRow(tiering.get_run(db, me.viewer, int(entry.object_id)), entry))
        except (ValueError, NotFound):  # not a run's number, or a run no longer there
            continue
    return rows


def _overview(request: Request, db: Session, me: Me, run_form: Form, status: int = 200) -> Response:
    row, spec = tiering.active_ruleset(db)
    return render(
        request,
        "tiering/overview.html",
        {
            "active": row,
            "readable": _readable(spec),
            "versions": tiering.rulesets(db),
            "runs": _recent_runs(db, me),
            "last_applied": tiering.last_applied(db),
            "run_form": run_form,
            "status_labels": STATUS_LABELS,
        },
        status=status,
    )


@router.get("/tiering")
def overview(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _overview(request, db, me, Form({"run_date": ""}, key="run"))


def _editor(
    request: Request,
    db: Session,
    me: Me,
    form: Form,
    *,
    preview: TieringRun | None = None,
    status: int = 200,
) -> Response:
    row, spec = tiering.active_ruleset(db)
    return render(
        request,
        "tiering/editor.html",
        {
            "form": form,
            "active": row,
            "simple": _simple(spec),
            "tiers": TIERS,
            "conditions": CONDITIONS,
            "condition_labels": {c: tr(CONDITION_HEADS[c]) for c in CONDITIONS},
            "level_keys": LEVEL_KEYS,
            "level_options": [(lv, lv) for lv in LEVELS],
            "preview": preview,
            "preview_view": _summary_view(preview) if preview else None,
        },
        status=status,
    )


@router.get("/tiering/rules")
def edit_rules(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    _, spec = tiering.active_ruleset(db)
    return _editor(request, db, me, Form(_spec_values(spec), key="rs"))


@router.post("/tiering/rules")
def save_rules(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    """Preview (a run over the unsaved rules, never appliable) or Save (a new version)."""
    require_role(me, "admin")
    values = _form_values(form)
    preview = text(form, "action") == "preview"
    run: TieringRun | None = None
    try:
        with db.begin_nested():  # on error nothing of it stays
            data = _parse_ruleset(values)
            if preview:
                run = tiering.start_run(db, me.viewer, rules=data.rules)
            else:
                tiering.save_ruleset(db, me.viewer, data.rules, data.note)
    except Invalid as exc:
        db.expire_all()
        return _editor(request, db, me, Form(values, exc.errors, key="rs"), status=422)
    if run is not None:
        return _editor(request, db, me, Form(values, key="rs"), preview=run)
    return redirect(request, "/tiering", "saved")


@router.post("/tiering/runs")
def start_run(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = {"run_date": text(form, "run_date").strip()}
    try:
        with db.begin_nested():
            data = parse(RunCreate, {"run_date": values["run_date"] or None})
            run = tiering.start_run(db, me.viewer, data.run_date)
    except Invalid as exc:
        db.expire_all()
        errors = [
            FieldError(e.field, NOT_A_DATE) if e.field == "run_date" else e for e in exc.errors
        ]
        return _overview(request, db, me, Form(values, errors, key="run"), status=422)
    return redirect(request, f"/tiering/runs/{run.id}", "created")


@dataclass
class SummaryView:
    customers: int
    tiers: list[tuple[str, int]]
    levels: list[tuple[str, int]]
    sources: list[str | None]  # rows of the move matrix: the tier before (None: none yet)
    matrix: dict[tuple[str | None, str], int]  # (from, to) → customers; the diagonal stays
    ownership_moves: int
    rules: list[tuple[str, int]]  # (label, customers), most first


def _summary_view(run: TieringRun) -> SummaryView:
    s = run.summary or {}
    try:
        spec = policy.Ruleset.model_validate(run.rules)
    except ValueError:
        spec = policy.DEFAULT
    tiers = {t: int(s.get("tiers", {}).get(t, 0)) for t in TIERS}
    matrix: dict[tuple[str | None, str], int] = {}
    incoming = dict.fromkeys(TIERS, 0)
    for move in s.get("tier_moves", []):
        matrix[(move["from"], move["to"])] = int(move["count"])
        if move["to"] in incoming:
            incoming[move["to"]] += int(move["count"])
    for t in TIERS:  # those whose tier stays: the tier's count less those who moved in
        matrix[(t, t)] = tiers[t] - incoming[t]
    sources: list[str | None] = list(TIERS)
    if any(m["from"] is None for m in s.get("tier_moves", [])):
        sources.insert(0, None)
    rules = sorted(s.get("rules", {}).items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return SummaryView(
        customers=int(s.get("customers", 0)),
        tiers=list(tiers.items()),
        levels=[(lv, int(s.get("levels", {}).get(lv, 0))) for lv in LEVELS],
        sources=sources,
        matrix=matrix,
        ownership_moves=int(s.get("ownership_moves", 0)),
        rules=[(reason_label(rule, spec), int(n)) for rule, n in rules],
    )


@router.get("/tiering/runs/{run_id}")
def run_page(
    run_id: int,
    request: Request,
    me: CurrentMe,
    db: Db,
    changed: str = "",
    tier: str = "",
    cursor: str | None = None,
) -> Response:
    require_role(me, "admin")
    run = tiering.get_run(db, me.viewer, run_id)
    filters = Form({"changed": changed == "1", "tier": tier if tier in TIERS else ""}, key="p")
    page = paginate(
        db,
        tiering.proposals(run.id, changed == "1", tier if tier in TIERS else None),
        key=TieringProposal.id,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    try:
        spec = policy.Ruleset.model_validate(run.rules)
    except ValueError:
        spec = policy.DEFAULT
    # A page of proposals names at most PAGE_SIZE customers: each is a primary-key read.
    names = {p.customer_id: db.get(Customer, p.customer_id) for p in page.items}
    tree = visible_tree(db, me)
    return render(
        request,
        "tiering/run.html",
        {
            "run": run,
            "view": _summary_view(run),
            "readable": _readable(spec),
            "filters": filters,
            "proposals": page.items,
            "customers": names,
            "units_by_id": tree.by_id,
            "reason": lambda rule: reason_label(rule, spec),
            "tier_options": [(t, t) for t in TIERS],
            "status_labels": STATUS_LABELS,
            "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            "first_url": url_with(request, cursor=None) if cursor else None,
        },
    )


@router.post("/tiering/runs/{run_id}/apply")
def apply_run(run_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    tiering.apply_run(db, me.viewer, run_id)  # refusals (applied, preview, newer): one message
    return redirect(request, f"/tiering/runs/{run_id}", "applied")
