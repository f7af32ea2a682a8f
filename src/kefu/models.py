"""Every model, imported once so the metadata is whole (Alembic, tests)."""

from kefu.audit.models import AuditEntry
from kefu.auth.models import ApiToken, LoginAttempt, WebSession
from kefu.db import Base
from kefu.idempotency.models import IdempotencyKey
from kefu.staff.models import Staff, StaffRole
from kefu.units.models import Unit, UnitFunction

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "AuditEntry",
    "IdempotencyKey",
    "LoginAttempt",
    "Staff",
    "StaffRole",
    "Unit",
    "UnitFunction",
    "WebSession",
    "metadata",
]
