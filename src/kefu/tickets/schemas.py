from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from kefu.i18n import N_
from kefu.validation import Input, KefuValueError, Name

T = TypeVar("T")
Priority = Literal["urgent", "high", "normal", "low"]
Channel = Literal["portal", "email", "api", "phone", "walk_in", "visit"]
State = Literal["new", "open", "pending", "on_hold", "resolved", "closed"]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(max_length=100_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40)]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
FieldType = Literal["text", "number", "date", "choice"]
# A custom field value as sent: checked against the field's definition by the service.
FieldValue = str | int | float | bool | None
CustomFields = dict[FieldKey, FieldValue]


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
    custom_fields: CustomFields = Field(
        default_factory=dict,
        max_length=50,
        description="Values of the category's custom fields, by key.",
    )


class TicketUpdate(Input):
    version: int = Field(description="The version you read; a stale one gets 409.")
    state: State | None = None
    priority: Priority | None = None
    subject: Subject | None = None
    tags: list[Tag] | None = Field(None, max_length=20)
    custom_fields: CustomFields | None = Field(
        None,
        max_length=50,
        description="Only the fields sent change; null clears one.",
    )
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class TransferIn(Input):
    version: int
    unit_id: int | None = None
    assignee_id: int | None = None
    reason: Annotated[str, StringConstraints(min_length=2, max_length=500)]


class MergeIn(Input):
    into_id: int = Field(description="The ticket that takes this one in (same customer).")
    version: int = Field(description="The version of this ticket you read; stale: 409.")
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class CollaboratorIn(Input):
    staff_id: int


class CollaboratorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The staff member's id.")
    username: str
    display_name: str
    unit_id: int


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
    merged_into_id: int | None = Field(description="Set when merged into that ticket (closed).")
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


# --- custom field definitions -----------------------------------------------------------------


class ChoiceIn(Input):
    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
    label_zh: Name
    label_en: Name


def _check_choices(type_: str | None, choices: list[ChoiceIn] | None) -> None:
    if choices is None:
        return
    values = [c.value for c in choices]
    if len(set(values)) != len(values):
        raise KefuValueError(N_("Each choice needs its own value."), field="choices")
    if type_ == "choice" and not choices:
        raise KefuValueError(N_("A choice field needs at least one choice."), field="choices")
    if type_ is not None and type_ != "choice" and choices:
        raise KefuValueError(N_("Only a choice field has choices."), field="choices")


class TicketFieldCreate(Input):
    key: FieldKey = Field(description="Lowercase letters, digits and _; unique; never changes.")
    category_code: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        None, description="Its sub-categories inherit it; null: every category."
    )
    label_zh: Name
    label_en: Name
    type: FieldType
    required: bool = False
    choices: list[ChoiceIn] = Field(default_factory=list, max_length=100)
    position: int = Field(0, ge=0, le=100_000)
    is_active: bool = True

    @model_validator(mode="after")
    def _choices(self) -> TicketFieldCreate:
        _check_choices(self.type, self.choices)
        return self


class TicketFieldUpdate(Input):
    category_code: Annotated[str, StringConstraints(max_length=40)] | None = None
    label_zh: Name | None = None
    label_en: Name | None = None
    type: FieldType | None = None
    required: bool | None = None
    choices: list[ChoiceIn] | None = Field(None, max_length=100)
    position: int | None = Field(None, ge=0, le=100_000)
    is_active: bool | None = None

    @model_validator(mode="after")
    def _choices(self) -> TicketFieldUpdate:
        _check_choices(self.type, self.choices)
        for name in ("label_zh", "label_en", "type", "required", "position", "is_active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise KefuValueError(N_("This field cannot be empty."), field=name)
        return self


class ChoiceOut(BaseModel):
    value: str
    label: str
    label_zh: str
    label_en: str


class TicketFieldOut(BaseModel):
    id: int
    key: str
    category_code: str | None
    label: str = Field(description="In the caller's language.")
    label_zh: str
    label_en: str
    type: str
    required: bool
    choices: list[ChoiceOut]
    position: int
    is_active: bool


# --- saved views and bulk actions of the agent console ------------------------------------------

StateFilter = Literal["new", "open", "pending", "on_hold", "resolved", "closed", "open_states"]
AssigneeFilter = Literal["me", "unassigned", "anyone"]
Tier = Literal["A", "B", "C"]
Level = Literal["5A", "4A", "3A", "2A", "1A"]
CategoryCode = Annotated[str, StringConstraints(min_length=1, max_length=40)]
FieldFilter = Annotated[str, StringConstraints(min_length=3, max_length=200)]


def _several(value: Any) -> Any:
    """A filter of several values; one value alone (as views saved before multi-values
    stored it, and as API clients may still send it) is a list of one. Duplicates go."""
    if value is None or value == []:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return list(dict.fromkeys(value))
    return value


Many = BeforeValidator(_several)
Several = Annotated[list[T], Field(max_length=50)]


class ViewFilters(Input):
    """The filters of the ticket list, as a saved view stores them. Each of state, priority,
    category, tier and service level holds one or several values (any of them matches);
    None means no filter. In `state`, "open_states" stands for every open state (new, open,
    pending, on hold); the default is just that. `tag` and `field` (custom fields) narrow
    further."""

    state: Annotated[Several[StateFilter] | None, Many] = ["open_states"]
    priority: Annotated[Several[Priority] | None, Many] = None
    category: Annotated[Several[CategoryCode] | None, Many] = None
    tier: Annotated[Several[Tier] | None, Many] = None
    service_level: Annotated[Several[Level] | None, Many] = None
    breached: bool | None = None
    unit_id: int | None = Field(None, description="Owned or handled by this unit or below.")
    assignee: AssigneeFilter = "anyone"
    q: Annotated[str, StringConstraints(max_length=100)] | None = None
    tag: Tag | None = Field(None, description="Tickets with this tag.")
    field: list[FieldFilter] = Field(
        default_factory=list,
        max_length=10,
        description="Custom field filters, `key=value`, `key>=value` or `key<=value` "
        "(numbers and dates); all of them must hold.",
    )


ViewName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ViewCreate(Input):
    name: ViewName
    filters: ViewFilters = Field(default_factory=ViewFilters)
    unit_id: int | None = Field(
        None, description="Share with this unit and the units below it (supervisors)."
    )
    position: int = Field(0, ge=0, le=10_000)


class ViewUpdate(Input):
    version: int = Field(description="The version you read; a stale one gets 409.")
    name: ViewName | None = None
    filters: ViewFilters | None = None
    unit_id: int | None = None
    position: int | None = Field(None, ge=0, le=10_000)


class ViewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    owner_id: int
    unit_id: int | None
    shared: bool
    filters: ViewFilters
    position: int
    version: int
    created_at: datetime
    updated_at: datetime


# --- routing rules --------------------------------------------------------------------------

RuleKind = Literal["category_function", "site_region"]
Function = Literal["service", "business", "marketing", "technical"]
Note = Annotated[str, StringConstraints(max_length=200)]


class RoutingRuleCreate(Input):
    kind: RuleKind
    category_code: CategoryCode | None = Field(
        None, description="category_function: required; site_region: only this category."
    )
    function: Function | None = Field(None, description="category_function only.")
    is_active: bool = True
    note: Note = ""
    position: int | None = Field(None, ge=0, le=100_000, description="Default: after the last.")


class RoutingRuleUpdate(Input):
    category_code: CategoryCode | None = None
    function: Function | None = None
    is_active: bool | None = None
    note: Note | None = None
    position: int | None = Field(None, ge=0, le=100_000)


class RoutingRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    category_code: str | None
    function: str | None
    position: int
    is_active: bool
    note: str


class RoutePreviewIn(Input):
    customer_id: int
    category_code: CategoryCode
    site_region_code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None


class RouteStepOut(BaseModel):
    rule_id: int | None
    outcome: str
    reason: str


class RoutePreviewOut(BaseModel):
    handling_unit_id: int
    handling_unit_name: str
    owning_unit_id: int
    linked: bool
    rule: str
    rule_id: int | None
    assignee_id: int | None
    assignee_name: str | None
    assign_rule: str
    trace: list[RouteStepOut]


class BulkItem(Input):
    id: int
    version: int = Field(description="The version you read; a stale one fails the request.")


class BulkAction(Input):
    """One action on many tickets, all or nothing."""

    tickets: list[BulkItem] = Field(min_length=1, max_length=200)
    action: Literal["assign", "state", "transfer"]
    assignee_id: int | None = Field(
        None, description="assign: the person; transfer: the person (optional with a unit)."
    )
    state: State | None = None
    unit_id: int | None = Field(None, description="transfer: the unit (optional with a person).")
    reason: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="Recorded with each change; a transfer needs one (2–500 characters)."
    )
