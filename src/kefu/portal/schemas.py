from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from kefu.tickets.schemas import CustomFields
from kefu.validation import Input, Password


class SetPassword(Input):
    password: Password
    confirm: Annotated[str, StringConstraints(max_length=200)] = ""


class PortalTicketIn(Input):
    customer_id: int | None = None  # a group administrator may submit for a branch
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    custom_fields: CustomFields = Field(
        default_factory=dict,
        max_length=50,
        description="Values of the category's custom fields, by key; a customer need not "
        "fill any, but what is given is checked (empty values count as not given).",
    )


class PortalReply(Input):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
