from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.validation import Input

Priority = Literal["urgent", "high", "normal", "low"]
Channel = Literal["portal", "email", "api", "phone", "walk_in", "visit"]
State = Literal["new", "open", "pending", "on_hold", "resolved", "closed"]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(max_length=100_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class TicketCreate(Input):
    customer_id: int
    contact_id: int | None = None
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    priority: Priority = "normal"
    subject: Subject
    description: Body = ""
    channel: Channel | None = None  # the API and agent entry say which; default "api"
    site_region_code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom_fields: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=50
    )


class TicketUpdate(Input):
    version: int = Field(description="The version you read; a stale one gets 409.")
    state: State | None = None
    priority: Priority | None = None
    subject: Subject | None = None
    tags: list[Tag] | None = Field(None, max_length=20)
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class TransferIn(Input):
    version: int
    unit_id: int | None = None
    assignee_id: int | None = None
    reason: Annotated[str, StringConstraints(min_length=2, max_length=500)]


class MessageIn(Input):
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    internal: bool = False


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    customer_id: int
    contact_id: int | None
    channel: str
    category_code: str
    priority: str
    subject: str
    description: str
    site_region_code: str | None
    owning_unit_id: int
    handling_unit_id: int
    assignee_id: int | None
    state: str
    tags: list[str]
    custom_fields: dict[str, Any]
    service_level: str | None
    first_response_due: datetime | None
    next_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    business_minutes_used: float | None
    breached_first_response: bool
    breached_resolution: bool
    version: int
    created_at: datetime
    updated_at: datetime


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    actor: str
    public: bool
    body: str
    data: dict[str, Any]
