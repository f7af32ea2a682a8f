from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from kefu.customers import policy
from kefu.i18n import N_
from kefu.validation import Email, Input, KefuValueError, Name

Status = Literal["active", "dormant", "lost"]
Channel = Literal["phone", "email", "sms", "wechat", "portal"]


def _credit_code(value: str) -> str:
    value = value.upper()
    if not policy.credit_code_ok(value):
        raise KefuValueError(
            N_("Not a valid unified social credit code (18 characters with a check digit).")
        )
    return value


def _cn_phone(value: str) -> str:
    phone = policy.normalise_phone(value)
    if phone is None:
        raise KefuValueError(
            N_("Not a Chinese mobile (11 digits) or landline (area code and number).")
        )
    return phone


def _region(value: str) -> str:
    if not policy.region_code_ok(value):
        raise KefuValueError(N_("Unknown administrative division code."))
    return value


CreditCode = Annotated[
    str, StringConstraints(min_length=18, max_length=18), AfterValidator(_credit_code)
]
CnPhone = Annotated[str, StringConstraints(min_length=3, max_length=32), AfterValidator(_cn_phone)]
Region = Annotated[str, StringConstraints(min_length=6, max_length=12), AfterValidator(_region)]
LongName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=60)]
Notes = Annotated[str, StringConstraints(max_length=5000)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CustomerCreate(Input):
    name: LongName
    short_name: ShortText | None = None
    credit_code: CreditCode | None = None
    external_id: ExternalId | None = None
    parent_id: int | None = None
    industry_code: str | None = Field(None, max_length=20)
    region_code: Region
    owning_unit_id: int
    account_manager_id: int | None = None
    is_important: bool = False
    is_group: bool = False
    is_potential: bool = False
    status: Status = "active"
    notes: Notes = ""


class CustomerUpdate(Input):
    name: LongName | None = None
    short_name: ShortText | None = None
    credit_code: CreditCode | None = None
    external_id: ExternalId | None = None
    parent_id: int | None = None
    industry_code: str | None = Field(None, max_length=20)
    region_code: Region | None = None
    owning_unit_id: int | None = None
    account_manager_id: int | None = None
    is_important: bool | None = None
    is_group: bool | None = None
    is_potential: bool | None = None
    status: Status | None = None
    notes: Notes | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    short_name: str | None
    credit_code: str | None
    external_id: str | None
    parent_id: int | None
    depth: int
    industry_code: str | None
    region_code: str
    owning_unit_id: int
    account_manager_id: int | None
    is_important: bool
    is_group: bool
    is_potential: bool
    status: str
    notes: str
    tier: str | None
    service_level: str | None
    tier_rule: str | None
    tier_pinned: bool
    pin_reason: str | None
    revenue_12m: Decimal
    created_at: datetime
    updated_at: datetime


class ContactCreate(Input):
    name: Name
    title: Annotated[str, StringConstraints(max_length=100)] | None = None
    phone: CnPhone | None = None
    email: Email | None = None
    preferred_channel: Channel = "phone"
    locale: Literal["zh_CN", "en"] = "zh_CN"
    portal_access: bool = False
    is_group_admin: bool = False


class ContactUpdate(Input):
    name: Name | None = None
    title: Annotated[str, StringConstraints(max_length=100)] | None = None
    phone: CnPhone | None = None
    email: Email | None = None
    preferred_channel: Channel | None = None
    locale: Literal["zh_CN", "en"] | None = None
    portal_access: bool | None = None
    is_group_admin: bool | None = None


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    name: str
    title: str | None
    phone: str | None
    email: str | None
    preferred_channel: str
    locale: str
    portal_access: bool
    is_group_admin: bool
    created_at: datetime


class RevenueCreate(Input):
    date: date
    amount: Decimal = Field(ge=0, le=Decimal("9999999999999999.99"), decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    business_line: Annotated[str, StringConstraints(max_length=60)] = ""
    source_ref: Annotated[str, StringConstraints(max_length=100)] | None = None


class RevenueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    date: date
    amount: Decimal
    currency: str
    business_line: str
    source_ref: str | None


class MonthlyRevenue(BaseModel):
    month: str  # YYYY-MM
    amount: Decimal
