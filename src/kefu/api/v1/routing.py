"""Routing rules (category → function, site region → local unit) and their preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from kefu.api.v1.common import IdempotencyKey, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.i18n import gettext
from kefu.tickets import routing
from kefu.tickets.schemas import (
    RoutePreviewIn,
    RoutePreviewOut,
    RouteStepOut,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
)

router = APIRouter(prefix="/routing-rules", tags=["routing"])


@router.get(
    "",
    response_model=list[RoutingRuleOut],
    summary="Every routing rule, in the order routing tries them (a short list: no pages)",
)
def list_rules(viewer: CurrentViewer, db: Db) -> list[RoutingRuleOut]:
    return [RoutingRuleOut.model_validate(r) for r in routing.rules(db)]


@router.post("", status_code=201, response_model=RoutingRuleOut, summary="Add a rule (admins)")
def create_rule(
    body: RoutingRuleCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[RoutingRuleOut, str]:
        rule = routing.create_rule(db, viewer, body)
        root = request.scope.get("root_path", "")
        return RoutingRuleOut.model_validate(rule), f"{root}/routing-rules/{rule.id}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get(
    "/preview",
    response_model=RoutePreviewOut,
    summary="Where a ticket would go now, and why: the intake's own routing, writing nothing",
)
def preview(
    viewer: CurrentViewer,
    db: Db,
    customer_id: int,
    category_code: Annotated[str, Query(min_length=1, max_length=40)],
    site_region_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> RoutePreviewOut:
    data = RoutePreviewIn(
        customer_id=customer_id, category_code=category_code, site_region_code=site_region_code
    )
    decision, customer = routing.preview(db, viewer, data)
    unit_name, person = routing.names(db, decision)
    return RoutePreviewOut(
        handling_unit_id=decision.handling_unit_id,
        handling_unit_name=unit_name,
        owning_unit_id=customer.owning_unit_id,
        linked=decision.handling_unit_id != customer.owning_unit_id,
        rule=decision.rule,
        rule_id=decision.rule_id,
        assignee_id=decision.assignee_id,
        assignee_name=person,
        assign_rule=decision.assign_rule,
        trace=[
            RouteStepOut(
                rule_id=s.rule_id, outcome=s.outcome, reason=gettext(s.message, **s.params)
            )
            for s in decision.trace
        ],
    )


@router.get("/{rule_id}", response_model=RoutingRuleOut)
def get_rule(rule_id: int, viewer: CurrentViewer, db: Db) -> RoutingRuleOut:
    return RoutingRuleOut.model_validate(routing.get_rule(db, rule_id))


@router.patch(
    "/{rule_id}",
    response_model=RoutingRuleOut,
    summary="Change a rule: enable/disable, category, function, note, position (admins)",
)
def update_rule(
    rule_id: int, body: RoutingRuleUpdate, viewer: CurrentViewer, db: Db
) -> RoutingRuleOut:
    return RoutingRuleOut.model_validate(routing.update_rule(db, viewer, rule_id, body))


@router.delete("/{rule_id}", status_code=204, summary="Remove a rule (admins)")
def delete_rule(rule_id: int, viewer: CurrentViewer, db: Db) -> Response:
    routing.delete_rule(db, viewer, rule_id)
    return Response(status_code=204)
