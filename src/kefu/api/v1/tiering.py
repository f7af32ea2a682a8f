from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, Limit, PageOut, created
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.customers.schemas import CustomerOut
from kefu.pagination import paginate
from kefu.tiering import policy
from kefu.tiering import service as tiering
from kefu.tiering.models import TierHistory, TieringProposal
from kefu.tiering.schemas import (
    PinIn,
    ProposalOut,
    RulesetOut,
    RulesetSave,
    RunCreate,
    RunOut,
    TierHistoryOut,
)

router = APIRouter(prefix="/tiering", tags=["tiering"])
pins = APIRouter(prefix="/customers", tags=["tiering"])


@router.get(
    "/rulesets",
    response_model=list[RulesetOut],
    summary="Saved rulesets, newest (active) first; the defaults when none is saved",
)
def list_rulesets(viewer: CurrentViewer, db: Db) -> list[RulesetOut]:
    rows = tiering.rulesets(db)
    if not rows:
        return [
            RulesetOut(
                id=None,
                version=0,
                rules=policy.DEFAULT.model_dump(mode="json"),
                note="default",
                created_at=None,
                created_by="system",
            )
        ]
    return [RulesetOut.model_validate(r) for r in rows]


@router.post(
    "/rulesets",
    status_code=201,
    response_model=RulesetOut,
    summary="Save a new ruleset version (refused when it leaves customers uncovered "
    "or its bands overlap); preview it first with POST /tiering/runs {rules}",
)
def save_ruleset(
    body: RulesetSave, request: Request, viewer: CurrentViewer, db: Db
) -> JSONResponse:
    row = tiering.save_ruleset(db, viewer, body.rules, body.note)
    return created(
        request,
        RulesetOut.model_validate(row),
        f"{request.scope.get('root_path', '')}/tiering/rulesets",
    )


@router.post(
    "/runs",
    status_code=201,
    response_model=RunOut,
    summary="A dry run over every customer: proposals and a summary, nothing changed",
)
def start_run(body: RunCreate, request: Request, viewer: CurrentViewer, db: Db) -> JSONResponse:
    run = tiering.start_run(db, viewer, body.run_date, body.rules)
    return created(
        request,
        RunOut.model_validate(run),
        f"{request.scope.get('root_path', '')}/tiering/runs/{run.id}",
    )


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: int, viewer: CurrentViewer, db: Db) -> RunOut:
    return RunOut.model_validate(tiering.get_run(db, viewer, run_id))


@router.get("/runs/{run_id}/proposals", response_model=PageOut[ProposalOut])
def list_proposals(
    run_id: int,
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    changed: bool = False,
    tier: Annotated[Literal["A", "B", "C"] | None, Query()] = None,
) -> PageOut[ProposalOut]:
    run = tiering.get_run(db, viewer, run_id)
    page = paginate(
        db,
        tiering.proposals(run.id, changed, tier),
        key=TieringProposal.id,
        limit=limit,
        cursor=cursor,
    )
    return PageOut[ProposalOut](
        items=[ProposalOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/runs/{run_id}/apply",
    response_model=RunOut,
    summary="Apply a dry run atomically; every change goes into the tier history",
)
def apply_run(run_id: int, viewer: CurrentViewer, db: Db) -> RunOut:
    return RunOut.model_validate(tiering.apply_run(db, viewer, run_id))


@pins.put(
    "/{customer_id}/pin",
    response_model=CustomerOut,
    summary="Pin a customer's tier (managers); runs keep it",
)
def pin(customer_id: int, body: PinIn, viewer: CurrentViewer, db: Db) -> CustomerOut:
    return CustomerOut.model_validate(
        tiering.pin_customer(db, viewer, customer_id, body.tier, body.reason)
    )


@pins.delete("/{customer_id}/pin", status_code=204)
def unpin(customer_id: int, viewer: CurrentViewer, db: Db) -> Response:
    tiering.unpin_customer(db, viewer, customer_id)
    return Response(status_code=204)


@pins.get(
    "/{customer_id}/tier-history",
    response_model=PageOut[TierHistoryOut],
    summary="Tier, level and ownership changes of a customer, newest first",
)
def tier_history(
    customer_id: int, viewer: CurrentViewer, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[TierHistoryOut]:
    page = paginate(
        db,
        tiering.history(db, viewer, customer_id),
        key=TierHistory.id,
        limit=limit,
        cursor=cursor,
        descending=True,
    )
    return PageOut[TierHistoryOut](
        items=[TierHistoryOut.model_validate(h) for h in page.items], next_cursor=page.next_cursor
    )
