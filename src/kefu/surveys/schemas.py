from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.validation import Input

Score = Annotated[int, Field(ge=1, le=7)]


class Scores(Input):
    """One score per SERVQUAL dimension, 1 (lowest) to 7 (highest)."""

    reliability: Score
    responsiveness: Score
    assurance: Score
    empathy: Score
    tangibles: Score


class AnswerIn(Input):
    expectations: Scores
    perceptions: Scores
    csat: Annotated[int, Field(ge=1, le=5)] | None = None
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class InvitationIn(Input):
    ticket_id: int | None = None
    visit_id: int | None = None


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    ticket_id: int | None
    visit_id: int | None
    locale: str
    expires_at: datetime
    answered_at: datetime | None
    token: str = ""
    url: str = ""


class AnswerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    ticket_id: int | None
    customer_id: int
    owning_unit_id: int
    agent_id: int | None
    expected_total: int
    perceived_total: int
    index: float
    csat: int | None
    nps: int | None
    comment: str
    answered_at: datetime


class RecoveryDoneIn(Input):
    version: int
    outcome: Annotated[str, StringConstraints(min_length=2, max_length=2000)]


class RecoveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    answer_id: int
    customer_id: int
    ticket_id: int | None
    owning_unit_id: int
    assignee_id: int | None
    reasons: list[str]
    due_at: datetime
    state: str
    outcome: str
    done_at: datetime | None
    followup_visit_id: int | None
    version: int


Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class TemplateTexts(Input):
    """One question in both languages."""

    zh_CN: Text
    en: Text


class TemplateUpdate(Input):
    """The texts of a survey template; every question in both languages."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    intro: TemplateTexts | None = None
    reliability: TemplateTexts | None = None
    responsiveness: TemplateTexts | None = None
    assurance: TemplateTexts | None = None
    empathy: TemplateTexts | None = None
    tangibles: TemplateTexts | None = None
    csat: TemplateTexts | None = None
    nps: TemplateTexts | None = None
    comment: TemplateTexts | None = None


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    texts: dict[str, dict[str, str]]
    is_default: bool
    is_active: bool
    updated_at: datetime
