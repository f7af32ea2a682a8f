"""Routing rules (分派规则): the ordered list the intake tries, with enable/disable, order,
edits, and "test this rule" — where a ticket of a customer, category and site region would
go now and why, computed by the intake's own routing (kefu.tickets.routing.route), writing
nothing. Administrators only: others get 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu import i18n
from kefu.errors import FieldError, Invalid
from kefu.i18n import N_
from kefu.tickets import queries as ticket_queries
from kefu.tickets import routing
from kefu.tickets.schemas import RoutePreviewIn, RoutingRuleCreate, RoutingRuleUpdate
from kefu.web.common import (
    FUNCTION_LABELS,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    env,
    optional,
    parse,
    redirect,
    render,
    require_role,
    text,
    tr,
)

router = APIRouter()
env.globals.setdefault("cx", env.get_template("customers/_macros.html").module)  # type: ignore[attr-defined]
env.filters["translated_pair"] = lambda pair: (pair[0], tr(pair[1]))

KIND_LABELS = {
    "category_function": N_("Category to a function"),
    "site_region": N_("On-site job to the site's unit (linked service)"),
}
OUTCOME_LABELS = {
    routing.APPLIED: N_("decided"),
    routing.PASSED: N_("passed over"),
    routing.NOT_MATCHING: N_("does not apply"),
    routing.DISABLED: N_("disabled"),
    routing.NOT_REACHED: N_("not reached"),
}
ASSIGN_LABELS = {
    "account_manager": N_("the account manager"),
    "least_loaded": N_("the least-loaded agent"),
    "unassigned": N_("nobody available"),
}
TEST_FIELDS = ("customer", "category_code", "site_region_code", "rule")
NO_SUCH_CUSTOMER = N_("No such customer.")
SEVERAL_CUSTOMERS = N_("Several customers match; type more of the name, or the customer's ID.")


def _categories(db: Session) -> list[tuple[str, str]]:
    english = i18n.get_locale() == "en"
    return [(c.code, c.name_en if english else c.name_zh) for c in ticket_queries.categories(db)]


def _customer_id(db: Session, me: Me, value: str) -> int:
    """The customer field takes an ID or (part of) a name, phone or credit code."""
    value = value.strip()
    if value.isdigit() and len(value) <= 9:
        return int(value)
    found = ticket_queries.intake_customers(db, me.viewer, value, 2) if value else []
    if not found:
        raise Invalid.field("customer", NO_SUCH_CUSTOMER)
    if len(found) > 1:
        raise Invalid.field("customer", SEVERAL_CUSTOMERS)
    return found[0].id


def _page(
    request: Request,
    db: Session,
    me: Me,
    *,
    new: Form | None = None,
    status: int = 200,
) -> Response:
    q = request.query_params
    test = Form(
        {
            "customer": q.get("customer", ""),
            "category_code": q.get("category_code", ""),
            "site_region_code": q.get("site_region_code", ""),
            "rule": q.get("rule", ""),
        },
        key="test",
    )
    result: dict[str, Any] | None = None
    if test["customer"] or test["category_code"]:
        try:
            data = parse(
                RoutePreviewIn,
                {
                    "customer_id": _customer_id(db, me, test["customer"]),
                    "category_code": test["category_code"],
                    "site_region_code": optional(test["site_region_code"]),
                },
            )
            decision, customer = routing.preview(db, me.viewer, data)
            unit_name, person = routing.names(db, decision)
            result = {
                "d": decision,
                "customer": customer,
                "unit_name": unit_name,
                "person": person,
                "linked": decision.handling_unit_id != customer.owning_unit_id,
            }
        except Invalid as exc:
            test.errors = [
                FieldError("customer" if e.field == "customer_id" else e.field, e.message, e.params)
                for e in exc.errors
            ]
            status = 422
    rules = routing.rules(db)

    def step_text(step: routing.Step) -> str:
        params = dict(step.params)
        if "function" in params:
            params["function"] = tr(FUNCTION_LABELS.get(params["function"], params["function"]))
        return tr(step.message, **params)

    ctx = {
        "step_text": step_text,
        "rules": rules,
        "categories": _categories(db),
        "category_names": dict(_categories(db)),
        "function_options": [(k, v) for k, v in FUNCTION_LABELS.items()],
        "kind_labels": KIND_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "assign_labels": ASSIGN_LABELS,
        "new": new
        or Form(
            {"kind": "category_function", "category_code": "", "function": "", "note": ""},
            key="new",
        ),
        "test": test,
        "result": result,
        "tested_rule": int(test["rule"]) if str(test["rule"]).isdigit() else None,
        "test_query": lambda rule_id: urlencode(
            {k: test[k] for k in TEST_FIELDS[:3] if test[k]} | {"rule": rule_id}
        ),
    }
    return render(request, "routing/page.html", ctx, status=status, fragment="content")


@router.get("/routing")
def routing_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _page(request, db, me)


def _rule_values(form: FormData) -> dict[str, Any]:
    return {f: text(form, f).strip() for f in ("kind", "category_code", "function", "note")}


@router.post("/routing")
def create_rule(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = _rule_values(form)
    try:
        with db.begin_nested():
            data = parse(
                RoutingRuleCreate,
                {
                    "kind": values["kind"],
                    "category_code": optional(values["category_code"]),
                    "function": optional(values["function"])
                    if values["kind"] != "site_region"
                    else None,
                    "note": values["note"],
                },
            )
            routing.create_rule(db, me.viewer, data)
    except Invalid as exc:
        db.expire_all()
        return _page(request, db, me, new=Form(values, exc.errors, key="new"), status=422)
    return redirect(request, "/routing", "created")


@router.post("/routing/{rule_id}")
def edit_rule(rule_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    """Enable/disable, move up/down, or change category, function and note."""
    require_role(me, "admin")
    action = text(form, "action")
    if action in ("up", "down"):
        routing.move_rule(db, me.viewer, rule_id, action)
    elif action in ("enable", "disable"):
        routing.update_rule(db, me.viewer, rule_id, RoutingRuleUpdate(is_active=action == "enable"))
    elif action == "delete":
        routing.delete_rule(db, me.viewer, rule_id)
    else:
        rule = routing.get_rule(db, rule_id)
        values = _rule_values(form)
        fields: dict[str, Any] = {
            "note": values["note"],
            "category_code": optional(values["category_code"]),
        }
        if rule.kind == "category_function":
            fields["function"] = optional(values["function"])
        try:
            with db.begin_nested():
                routing.update_rule(db, me.viewer, rule_id, parse(RoutingRuleUpdate, fields))
        except Invalid as exc:
            db.expire_all()
            raise Invalid(errors=exc.errors) from exc  # shown as a toast / error page
    # Back to the page as it was, with the test that was on it (only the test's own fields).
    back = {k: v for k, v in parse_qsl(text(form, "back")) if k in TEST_FIELDS}
    return redirect(request, "/routing" + (f"?{urlencode(back)}" if back else ""), "saved")
