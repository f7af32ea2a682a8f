from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from kefu.i18n import N_
from kefu.validation import Input, KefuValueError

Priority = Literal["urgent", "high", "normal", "low"]
ContentKey = Literal[
    "dedicated_manager",
    "onsite_response_hours",
    "hotline_24x7",
    "visit_frequency_days",
    "priority_dispatch",
    "periodic_review",
]
Minutes = Annotated[int, Field(ge=1, le=525600)]  # up to a year


class ContentItem(Input):
    key: ContentKey
    value: bool | int | None


class SlaTargetIn(Input):
    priority: Priority
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    first_response_minutes: Minutes
    next_response_minutes: Minutes
    resolution_minutes: Minutes

    @model_validator(mode="after")
    def _ordered(self) -> SlaTargetIn:
        if self.first_response_minutes > self.resolution_minutes:
            raise KefuValueError(N_("The first response cannot be due after the resolution."))
        return self


class ServiceLevelUpdate(Input):
    name_zh: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    name_en: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    content: list[ContentItem] | None = Field(None, max_length=20)
    return_visit_hours: Annotated[int, Field(ge=1, le=2160)] | None = None
    return_visit_method: Literal["phone", "onsite", "survey"] | None = None
    visit_frequency_days: Annotated[int, Field(ge=1, le=730)] | None = None
    is_24x7: bool | None = None
    pause_on_hold: bool | None = None
    targets: list[SlaTargetIn] | None = Field(None, max_length=200)

    @field_validator("targets")
    @classmethod
    def _targets_complete(cls, targets: list[SlaTargetIn] | None) -> list[SlaTargetIn] | None:
        if targets is None:
            return targets
        keys = [(t.priority, t.category_code) for t in targets]
        if len(keys) != len(set(keys)):
            raise KefuValueError(N_("Each priority (and category) may have one target only."))
        generic = {p for p, c in keys if c is None}
        if generic != {"urgent", "high", "normal", "low"}:
            raise KefuValueError(
                N_(
                    "Targets must include every priority (urgent, high, normal, low) "
                    "without a category."
                )
            )
        return targets


class SlaTargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    priority: str
    category_code: str | None
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int


class ServiceLevelOut(BaseModel):
    code: str
    rank: int
    version_id: int
    version: int
    name: str
    name_zh: str
    name_en: str
    description: str
    content: list[dict[str, Any]]
    return_visit_hours: int
    return_visit_method: str
    visit_frequency_days: int | None
    is_24x7: bool
    pause_on_hold: bool
    created_at: datetime
    created_by: str
    targets: list[SlaTargetOut]
