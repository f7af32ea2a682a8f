from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kefu.validation import Input, Name, RegionCode, TimeZone

Function = Literal["service", "business", "marketing", "technical"]


def _default_functions() -> list[Function]:
    return ["service"]


class UnitCreate(Input):
    name: Name
    parent_id: int | None = None
    region_code: RegionCode
    timezone: TimeZone | None = None
    functions: list[Function] = Field(default_factory=_default_functions, max_length=4)
    sort_order: int = Field(0, ge=-100000, le=100000)


class UnitUpdate(Input):
    name: Name | None = None
    parent_id: int | None = None
    region_code: RegionCode | None = None
    timezone: TimeZone | None = None
    functions: list[Function] | None = Field(None, max_length=4)
    sort_order: int | None = Field(None, ge=-100000, le=100000)
    is_active: bool | None = None


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    parent_id: int | None
    region_code: str
    timezone: str
    functions: list[str] = Field(validation_alias="function_names")
    depth: int
    level: str
    path: str
    sort_order: int
    is_active: bool
    created_at: datetime
    updated_at: datetime
