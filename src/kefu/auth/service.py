"""Signing in: password checks with lock-out and throttling, web sessions, API tokens.

Secrets given to clients are random; the database keeps only their SHA-256, so a copy of
the database signs nobody in. Every lookup joins the staff row, so deactivation bites at
the next request in every process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from kefu.audit.service import record
from kefu.auth import passwords
from kefu.auth.models import ApiToken, LoginAttempt, WebSession
from kefu.clock import now
from kefu.config import get_settings
from kefu.errors import Forbidden, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer
from kefu.staff.models import Staff, StaffRole
from kefu.units.models import Unit

TOKEN_PREFIX = "kefu_"
THROTTLE_WINDOW = timedelta(minutes=15)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def viewer_for(
    staff: Staff,
    unit_path: str | None,
    *,
    channel: str,
    request_id: str | None = None,
    remote_addr: str | None = None,
) -> Viewer:
    return Viewer(
        staff_id=staff.id,
        username=staff.username,
        unit_id=staff.unit_id,
        unit_path=unit_path,
        roles=frozenset(staff.roles),
        channel=channel,
        request_id=request_id,
        remote_addr=remote_addr,
        locale=staff.locale,
    )


@dataclass
class LoginResult:
    staff: Staff | None
    error: str | None = None  # a catalogue msgid
    status: int = 200


THROTTLED = N_("Too many failed sign-ins from your address; try again later.")
WRONG_PASSWORD = N_("Wrong username or password.")
LOCKED = N_(
    "This account is locked after repeated failed sign-ins; "
    "try again later or ask an administrator."
)


class PasswordAccount(Protocol):
    """What the shared sign-in checks need of an account (staff, a portal contact)."""

    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


def throttled(session: Session, remote_addr: str, at: datetime) -> bool:
    """Too many failed sign-ins from this address lately (every kind of account counts)."""
    failures = (
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.remote_addr == remote_addr, LoginAttempt.at >= at - THROTTLE_WINDOW)
        )
        or 0
    )
    return failures >= get_settings().login_rate_per_ip


def check_password(
    session: Session,
    account: PasswordAccount | None,
    password: str,
    *,
    active: bool,
    username: str,
    remote_addr: str,
    at: datetime,
    wrong: str = WRONG_PASSWORD,
    locked: str = LOCKED,
) -> tuple[str | None, int]:
    """The one password check of every sign-in: Argon2 (against a dummy hash when there is
    no account, so timing does not tell who exists), lock-out after repeated failures, and
    each failure recorded for the address throttle. (None, 200) when it succeeded; else the
    msgid and status to refuse with (the caller commits the failure, then refuses)."""
    settings = get_settings()
    ok = passwords.verify_password(account.password_hash if account else None, password or "")
    if account is not None and account.locked_until is not None and account.locked_until > at:
        session.add(LoginAttempt(at=at, username=username[:64], remote_addr=remote_addr))
        return locked, 401
    if account is None or not ok or not active:
        session.add(LoginAttempt(at=at, username=username[:64], remote_addr=remote_addr))
        if account is not None and not ok:
            account.failed_logins += 1
            if account.failed_logins >= settings.login_max_failures:
                account.locked_until = at + timedelta(minutes=settings.login_lock_minutes)
                account.failed_logins = 0
        return wrong, 401
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = at
    if account.password_hash and passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    return None, 200


def authenticate(session: Session, username: str, password: str, remote_addr: str) -> LoginResult:
    """Check a password. Failures are recorded (the caller commits them, then refuses)."""
    at = now()
    if throttled(session, remote_addr, at):
        return LoginResult(None, THROTTLED, 429)
    username = (username or "").strip().lower()[:64]
    staff = session.scalars(
        select(Staff)
        .where(Staff.username == username)
        .options(selectinload(Staff.role_rows))
        .with_for_update()
    ).first()
    error, status = check_password(
        session,
        staff,
        password,
        active=bool(staff and staff.is_active),
        username=username,
        remote_addr=remote_addr,
        at=at,
    )
    return LoginResult(None if error else staff, error, status)


# --- web sessions -------------------------------------------------------------------------


def start_session(
    session: Session,
    staff: Staff,
    *,
    remote_addr: str | None,
    user_agent: str | None,
    channel_viewer: Viewer | None = None,
) -> str:
    """A new web session; returns the cookie value."""
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        id=digest(secret),
        staff_id=staff.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now(),
        expires_at=now() + timedelta(hours=get_settings().session_hours),
        remote_addr=remote_addr,
        user_agent=(user_agent or "")[:300],
    )
    session.add(row)
    viewer = channel_viewer or viewer_for(staff, None, channel="web", remote_addr=remote_addr)
    record(session, viewer, "auth.login", "staff", staff.id)
    return secret


def session_viewer(
    session: Session, secret: str, **ctx: str | None
) -> tuple[Viewer, WebSession] | None:
    """The signed-in person of a web session, in one query; None when it ended."""
    row = session.execute(
        select(WebSession, Staff, Unit.path, _roles_csv())
        .join(Staff, Staff.id == WebSession.staff_id)
        .join(Unit, Unit.id == Staff.unit_id)
        .where(
            WebSession.id == digest(secret),
            WebSession.expires_at > now(),
            Staff.is_active.is_(True),
        )
    ).first()
    if row is None:
        return None
    web_session, staff, path, roles = row
    return _viewer(staff, path, roles, "web", ctx), web_session


def end_session(session: Session, secret: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == digest(secret)))


# --- API tokens ---------------------------------------------------------------------------


def issue_token(
    session: Session,
    viewer: Viewer,
    staff: Staff,
    *,
    kind: str,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new token; the plain value is returned once and never stored."""
    if kind == "integration" and staff.id != viewer.staff_id and not viewer.is_admin:
        raise Forbidden(N_("Only administrators may create tokens for others."))
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if kind == "access" and expires_at is None:
        expires_at = now() + timedelta(minutes=get_settings().access_token_minutes)
    token = ApiToken(
        staff_id=staff.id,
        kind=kind,
        name=name,
        token_hash=digest(plain),
        prefix=plain[:12],
        created_at=now(),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    if kind == "integration":
        record(
            session,
            viewer,
            "token.create",
            "api_token",
            token.id,
            {
                "name": {"before": None, "after": name},
                "staff_id": {"before": None, "after": staff.id},
            },
        )
    return plain, token


def token_viewer(session: Session, plain: str, **ctx: str | None) -> Viewer | None:
    """The Bearer token's person, in one query (token, staff, unit path and roles)."""
    at = now()
    row = session.execute(
        select(ApiToken, Staff, Unit.path, _roles_csv())
        .join(Staff, Staff.id == ApiToken.staff_id)
        .join(Unit, Unit.id == Staff.unit_id)
        .where(
            ApiToken.token_hash == digest(plain),
            ApiToken.revoked_at.is_(None),
            Staff.is_active.is_(True),
        )
    ).first()
    if row is None:
        return None
    token, staff, path, roles = row
    if token.expires_at is not None and token.expires_at <= at:
        return None
    if token.last_used_at is None or at - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = at  # coarse, so reads do not write on every request
    return _viewer(staff, path, roles, "api", ctx)


def _roles_csv() -> Any:
    return (
        select(func.aggregate_strings(StaffRole.role, ","))
        .where(StaffRole.staff_id == Staff.id)
        .scalar_subquery()
    )


def _viewer(
    staff: Staff, path: str | None, roles: str | None, channel: str, ctx: dict[str, str | None]
) -> Viewer:
    return Viewer(
        staff_id=staff.id,
        username=staff.username,
        unit_id=staff.unit_id,
        unit_path=path,
        roles=frozenset((roles or "").split(",")) - {""},
        channel=channel,
        request_id=ctx.get("request_id"),
        remote_addr=ctx.get("remote_addr"),
        locale=staff.locale,
    )


def list_tokens(session: Session, viewer: Viewer) -> list[ApiToken]:
    stmt = (
        select(ApiToken)
        .where(ApiToken.kind == "integration")
        .options(selectinload(ApiToken.staff))
        .order_by(ApiToken.id.desc())
    )
    if not viewer.is_admin:
        stmt = stmt.where(ApiToken.staff_id == viewer.staff_id)
    return list(session.scalars(stmt))


def revoke_token(session: Session, viewer: Viewer, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.staff_id != viewer.staff_id and not viewer.is_admin):
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = now()
        record(
            session,
            viewer,
            "token.revoke",
            "api_token",
            token.id,
            {"revoked_at": {"before": None, "after": token.revoked_at.isoformat()}},
        )
    return token


def purge_expired(session: Session) -> dict[str, int]:
    """Housekeeping for the worker: forget expired sessions and old login attempts."""
    at = now()
    s = session.execute(delete(WebSession).where(WebSession.expires_at <= at))
    a = session.execute(delete(LoginAttempt).where(LoginAttempt.at < at - timedelta(days=1)))
    return {"sessions": s.rowcount or 0, "login_attempts": a.rowcount or 0}  # type: ignore[attr-defined]


# --- throttling of other secrets (survey links …) -----------------------------------------
# A wrong survey token is a failed sign-in of its own kind: it counts against the address
# in the same table and window as wrong passwords, so probing either gets the same 429.


def address_throttled(session: Session, remote_addr: str) -> bool:
    failures = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.remote_addr == remote_addr,
            LoginAttempt.at >= now() - THROTTLE_WINDOW,
        )
    )
    return (failures or 0) >= get_settings().login_rate_per_ip


def record_failed_attempt(session: Session, what: str, remote_addr: str) -> None:
    session.add(LoginAttempt(at=now(), username=what[:64], remote_addr=remote_addr))
