from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.validation import Input

Amount = Annotated[Decimal, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)]


class ComplaintUpdate(Input):
    version: int = Field(description="The version you read; a stale one gets 409.")
    severity: Literal[1, 2, 3] | None = None
    cause_code: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    remedy: Annotated[str, StringConstraints(max_length=4000)] | None = None
    compensation: Amount | None = None


class DecisionIn(Input):
    version: int
    approve: bool
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class VerifyIn(Input):
    version: int
    verification: Annotated[str, StringConstraints(min_length=2, max_length=2000)]


class ComplaintOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    customer_id: int
    owning_unit_id: int
    severity: int
    severity_reason: str
    cause_code: str | None
    repeat_of_id: int | None
    remedy: str
    compensation: Decimal | None
    compensation_state: str
    compensation_decided_by: str | None
    compensation_decided_at: datetime | None
    verified_at: datetime | None
    verified_by: str | None
    verification: str
    created_at: datetime
    version: int


class CauseOut(BaseModel):
    code: str
    name: str
