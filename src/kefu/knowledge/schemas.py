from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kefu.validation import Input, Name

Kind = Literal["personal", "unit", "global"]
PhraseBody = Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class PhraseCreate(Input):
    kind: Kind = "personal"
    title: Name
    body: PhraseBody = Field(
        description="Plain text with placeholders such as {customer}, {contact}, "
        "{ticket_number}, {agent}, {due}; {{ and }} are literal braces."
    )
    unit_id: int | None = Field(None, description="For kind=unit: the unit it is shared with.")


class PhraseUpdate(Input):
    version: int = Field(description="The version you read; a stale one gets 409.")
    title: Name | None = None
    body: PhraseBody | None = None


class PhraseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    body: str
    owner_id: int | None
    unit_id: int | None
    placeholders: list[str]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class RenderedOut(BaseModel):
    phrase_id: int
    ticket_id: int
    text: str
