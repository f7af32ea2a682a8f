from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kefu.validation import Email, Input, Name, Password, Phone, Username

Role = Literal["agent", "supervisor", "manager", "admin"]
LocaleCode = Literal["zh_CN", "en"]


def _default_roles() -> list[Role]:
    return ["agent"]


class StaffCreate(Input):
    username: Username
    display_name: Name
    unit_id: int
    roles: list[Role] = Field(default_factory=_default_roles, min_length=1, max_length=4)
    email: Email | None = None
    phone: Phone | None = None
    locale: LocaleCode = "zh_CN"
    password: Password | None = None


class StaffUpdate(Input):
    display_name: Name | None = None
    unit_id: int | None = None
    roles: list[Role] | None = Field(None, min_length=1, max_length=4)
    email: Email | None = None
    phone: Phone | None = None
    locale: LocaleCode | None = None
    is_active: bool | None = None
    password: Password | None = None


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    unit_id: int
    roles: list[str]
    email: str | None
    phone: str | None
    locale: str
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
