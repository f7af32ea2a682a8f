from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.validation import Input


class OutcomeIn(Input):
    """What the agent records after a call or a trip."""

    version: int = Field(description="The version you read; a stale one gets 409.")
    reached: bool
    satisfied: bool | None = None
    follow_up: bool = False
    customer_words: Annotated[str, StringConstraints(max_length=2000)] = ""


class VisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Literal["ticket", "periodic", "recovery"]
    method: Literal["phone", "onsite", "survey"]
    customer_id: int
    contact_id: int | None
    ticket_id: int | None
    owning_unit_id: int
    assignee_id: int | None
    due_at: datetime
    state: Literal["scheduled", "done", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    reached: bool | None
    satisfied: bool | None
    follow_up: bool
    customer_words: str
    completed_at: datetime | None
    completed_by: str | None
    escalation: int
    version: int
