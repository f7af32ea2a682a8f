"""Input and output of the channels' admin and personal endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=1000)
    topics: list[str] = Field(min_length=1, max_length=50, description="Event types, or '*'.")
    is_active: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    url: str | None = Field(None, min_length=1, max_length=1000)
    topics: list[str] | None = Field(None, min_length=1, max_length=50)
    is_active: bool | None = None


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    url: str
    topics: list[str]
    is_active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (also readable by admins later).")


class RobotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_id: int
    kind: str = Field(pattern="^(wecom|dingtalk|feishu)$")
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=1000)
    secret: str | None = Field(
        None, max_length=200, description="DingTalk / Feishu signing secret."
    )
    topics: list[str] = Field(min_length=1, max_length=50)
    locale: str = Field("zh_CN", pattern="^(zh_CN|en)$")
    is_active: bool = True


class RobotUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    url: str | None = Field(None, min_length=1, max_length=1000)
    secret: str | None = Field(None, max_length=200)
    topics: list[str] | None = Field(None, min_length=1, max_length=50)
    locale: str | None = Field(None, pattern="^(zh_CN|en)$")
    is_active: bool | None = None


class RobotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    kind: str
    name: str
    url: str
    topics: list[str]
    locale: str
    is_active: bool
    created_at: datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    outbox_id: int
    channel: str
    target: str
    key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    duration_ms: int
    outcome: str
    detail: str


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    topic: str
    title: str = ""
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(max_length=60)
    channel: str = Field(max_length=20)
    enabled: bool


class PreferenceOut(PreferenceIn):
    default: bool
