from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.tiering.policy import Ruleset
from kefu.validation import Input


class RulesetSave(Input):
    rules: Ruleset
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class RulesetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int | None
    version: int
    rules: dict[str, Any]
    note: str
    created_at: datetime | None
    created_by: str


class RunCreate(Input):
    run_date: date | None = None
    rules: Ruleset | None = Field(
        None, description="Preview these rules instead of the saved ones."
    )


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ruleset_id: int | None
    run_date: date
    status: str
    summary: dict[str, Any]
    created_at: datetime
    created_by: str
    applied_at: datetime | None
    applied_by: str | None


class ProposalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    old_tier: str | None
    new_tier: str
    old_level: str | None
    new_level: str | None
    old_unit_id: int
    new_unit_id: int
    rule: str
    revenue_12m: Decimal


class PinIn(Input):
    tier: Literal["A", "B", "C"]
    reason: Annotated[str, StringConstraints(min_length=2, max_length=500)]


class TierHistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int | None
    from_tier: str | None
    to_tier: str | None
    from_level: str | None
    to_level: str | None
    from_unit_id: int | None
    to_unit_id: int | None
    reason: str
    actor: str
    at: datetime
