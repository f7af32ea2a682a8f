from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from kefu.i18n import N_
from kefu.validation import Email, Input, KefuValueError, Name

Security = Literal["tls", "starttls", "plain"]
Function = Literal["service", "business", "marketing", "technical"]


def _host(value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9a-fA-F:.]+\]", value):
        raise KefuValueError(N_("Not a valid host name."))
    return value


def _folder(value: str) -> str:
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise KefuValueError(N_("Control characters are not allowed."))
    return value


Host = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_host)]
Folder = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_folder)]
User = Annotated[str, StringConstraints(min_length=1, max_length=254), AfterValidator(_folder)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Port = Annotated[int, Field(ge=1, le=65535)]


class MailboxCreate(Input):
    name: Name
    address: Email
    unit_id: int
    function: Function | None = None
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "other"
    imap_host: Host
    imap_port: Port = 993
    imap_security: Security = "tls"
    imap_user: User
    imap_password: Password
    imap_folder: Folder = "INBOX"
    is_active: bool = True


class MailboxUpdate(Input):
    name: Name | None = None
    address: Email | None = None
    unit_id: int | None = None
    function: Function | None = None
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    imap_host: Host | None = None
    imap_port: Port | None = None
    imap_security: Security | None = None
    imap_user: User | None = None
    imap_password: Password | None = Field(None, description="Omit to keep the stored one.")
    imap_folder: Folder | None = None
    is_active: bool | None = None


class MailboxOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    unit_id: int
    function: str | None
    category_code: str
    imap_host: str
    imap_port: int
    imap_security: str
    imap_user: str
    imap_folder: str
    is_active: bool
    last_fetch_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class InboundMailOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    mailbox_id: int
    message_key: str
    status: str
    reason: str | None
    detail: str | None
    from_address: str | None
    subject: str
    size: int
    ticket_id: int | None
    received_at: datetime
    updated_at: datetime


class AssignIn(Input):
    customer_id: int
    contact_id: int | None = None


class TemplateIn(Input):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class TemplateOut(BaseModel):
    key: str
    locale: str
    subject: str
    body: str
    custom: bool  # an administrator changed it (else the built-in wording)
    placeholders: list[str]
