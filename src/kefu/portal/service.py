"""Portal accounts: invitations by staff, setting the password, signing in and out.

Signing in reuses the staff mechanisms of `kefu.auth` (Argon2, lock-out per account,
throttling per address) through `auth.service.check_password`. A portal session is its own
row and cookie, with its own CSRF token: a contact's cookie opens no staff page and a staff
cookie opens no portal page. Every lookup joins the contact and requires its portal-access
flag, so clearing the flag (or deleting the contact) signs the contact out everywhere at
the next request. Services flush; the edge commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.auth import passwords
from kefu.auth import service as auth
from kefu.clock import now
from kefu.config import get_settings
from kefu.customers import policy as customer_policy
from kefu.customers import service as customers
from kefu.customers.models import Contact, Customer
from kefu.errors import Invalid, NotFound
from kefu.i18n import LOCALES, N_
from kefu.notifications.service import notify
from kefu.portal.models import PortalAccount, PortalInvitation, PortalSession
from kefu.portal.schemas import SetPassword
from kefu.scope import Viewer

CHANNEL = "portal"
BROWSER, API = "browser", "api"  # the kinds of portal session
TOKEN_PREFIX = "kefuc_"  # contact API tokens (staff tokens start "kefu_")
WRONG_LOGIN = N_("Wrong e-mail address, phone or password.")
LOCKED = N_(
    "This account is locked after repeated failed sign-ins; "
    "try again later or ask your service contact."
)
LINK_GONE = N_(
    "This link has expired or has been used already. Ask your service contact for a new one."
)


def contact_viewer(
    contact: Contact,
    customer: Customer,
    *,
    request_id: str | None = None,
    remote_addr: str | None = None,
) -> Viewer:
    """A contact as the one who asks: sees their customer's records (a group administrator
    the branches' too) and signs the audit log as the contact."""
    return Viewer(
        staff_id=None,
        username=contact.name,
        unit_id=None,
        unit_path=None,
        roles=frozenset(),
        channel=CHANNEL,
        request_id=request_id,
        remote_addr=remote_addr,
        locale=contact.locale,
        contact_id=contact.id,
        customer_id=customer.id,
        customer_path=customer.path,
        group_admin=contact.is_group_admin,
    )


def normalise_login(login: str) -> tuple[str | None, str | None]:
    """(e-mail, phone) of what a contact typed to sign in; one of them is None."""
    login = (login or "").strip()
    if "@" in login:
        return login.lower()[:254], None
    return None, customer_policy.normalise_phone(login)


# --- invitations ------------------------------------------------------------------------------


@dataclass
class Invitation:
    token: str  # the plain secret, shown once; only its digest is stored
    row: PortalInvitation
    account: PortalAccount


def invite(
    session: Session,
    viewer: Viewer,
    customer_id: int,
    contact_id: int,
    *,
    base_url: str = "",
) -> Invitation:
    """A staff member sends a contact a link to set their portal password (a first
    invitation or a reset). Earlier unused links stop working; the account signs in with
    the contact's e-mail address and phone as they are now."""
    contact = customers.get_contact(session, viewer, customer_id, contact_id)  # scope: 404
    if not contact.portal_access:
        raise Invalid.field("portal_access", N_("Give the contact portal access first."))
    email = contact.email.strip().lower() if contact.email else None
    phone = customer_policy.normalise_phone(contact.phone) if contact.phone else None
    if email is None and phone is None:
        raise Invalid.field(
            "email", N_("The contact needs an e-mail address or a mobile phone to sign in.")
        )
    account = session.scalars(
        select(PortalAccount).where(PortalAccount.contact_id == contact.id).with_for_update()
    ).first()
    for name, value in (("email", email), ("phone", phone)):
        if value is None:
            continue
        column = getattr(PortalAccount, name)
        taken = session.scalar(
            select(PortalAccount.id).where(column == value, PortalAccount.contact_id != contact.id)
        )
        if taken is not None:
            raise Invalid.field(
                name,
                N_("Another contact already signs in to the portal with {value}."),
                value=value,
            )
    at = now()
    if account is None:
        account = PortalAccount(contact_id=contact.id, created_at=at, failed_logins=0)
        session.add(account)
    before = {"email": account.email, "phone": account.phone}
    account.email, account.phone = email, phone
    account.updated_at = at
    session.execute(
        update(PortalInvitation)
        .where(
            PortalInvitation.contact_id == contact.id,
            PortalInvitation.used_at.is_(None),
            PortalInvitation.revoked_at.is_(None),
        )
        .values(revoked_at=at)
    )
    token = secrets.token_urlsafe(32)
    hours = get_settings().portal_invitation_hours
    row = PortalInvitation(
        contact_id=contact.id,
        token_hash=auth.digest(token),
        created_by_id=viewer.staff_id,
        created_at=at,
        expires_at=at + timedelta(hours=hours),
    )
    session.add(row)
    session.flush()
    record(
        session,
        viewer,
        "portal.invite",
        "contact",
        contact.id,
        {
            "invitation_expires_at": {"before": None, "after": row.expires_at.isoformat()},
            **{
                k: {"before": before[k], "after": v}
                for k, v in (("email", email), ("phone", phone))
                if before[k] != v
            },
        },
    )
    # The link has to reach the contact, so the message carries it; it works once and expires.
    notify(
        session,
        "portal.invitation",
        f"contact:{contact.id}",
        {
            "contact_id": contact.id,
            "url": f"{base_url.rstrip('/')}/portal/welcome/{token}",
            "expires_at": row.expires_at.isoformat(),
        },
        f"portal.invitation:{row.id}",
    )
    return Invitation(token, row, account)


@dataclass
class Welcome:
    invitation: PortalInvitation
    account: PortalAccount
    contact: Contact
    customer: Customer


def open_invitation(session: Session, token: str, *, for_update: bool = False) -> Welcome:
    """The invitation behind a link, while it is unused, unexpired and the contact still has
    portal access; else NotFound with a message saying what to do."""
    stmt = (
        select(PortalInvitation, PortalAccount, Contact, Customer)
        .join(Contact, Contact.id == PortalInvitation.contact_id)
        .join(Customer, Customer.id == Contact.customer_id)
        .join(PortalAccount, PortalAccount.contact_id == Contact.id)
        .where(
            PortalInvitation.token_hash == auth.digest(token or ""),
            PortalInvitation.used_at.is_(None),
            PortalInvitation.revoked_at.is_(None),
            PortalInvitation.expires_at > now(),
            Contact.portal_access.is_(True),
        )
    )
    if for_update:
        stmt = stmt.with_for_update(of=PortalInvitation)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(LINK_GONE)
    return Welcome(*row)


def accept_invitation(
    session: Session,
    token: str,
    data: SetPassword,
    *,
    request_id: str | None = None,
    remote_addr: str | None = None,
) -> Welcome:
    """The contact sets their password through the link; the link is used up."""
    found = open_invitation(session, token, for_update=True)
    if data.password != data.confirm:
        raise Invalid.field("confirm", N_("The two passwords differ."))
    at = now()
    account = found.account
    account.password_hash = passwords.hash_password(data.password)
    account.failed_logins = 0
    account.locked_until = None
    first = account.activated_at is None
    account.activated_at = account.activated_at or at
    account.updated_at = at
    found.invitation.used_at = at
    # A new password ends the sessions started with the old one.
    session.execute(delete(PortalSession).where(PortalSession.account_id == account.id))
    viewer = contact_viewer(
        found.contact, found.customer, request_id=request_id, remote_addr=remote_addr
    )
    record(
        session,
        viewer,
        "portal.activate" if first else "portal.password",
        "contact",
        found.contact.id,
        {"password": {"before": None, "after": "set"}},
    )
    session.flush()
    return found


# --- signing in ---------------------------------------------------------------------------------


@dataclass
class SignIn:
    account: PortalAccount | None
    error: str | None = None
    status: int = 200


def authenticate(session: Session, login: str, password: str, remote_addr: str) -> SignIn:
    """E-mail address or phone, and password: the staff checks (throttle, lock-out, Argon2)."""
    at = now()
    if auth.throttled(session, remote_addr, at):
        return SignIn(None, auth.THROTTLED, 429)
    email, phone = normalise_login(login)
    found = None
    if email or phone:
        column = PortalAccount.email if email else PortalAccount.phone
        found = session.execute(
            select(PortalAccount, Contact.portal_access)
            .join(Contact, Contact.id == PortalAccount.contact_id)
            .where(column == (email or phone))
            .with_for_update(of=PortalAccount)
        ).first()
    account = found[0] if found else None
    active = bool(found and found[1] and account and account.password_hash)
    error, status = auth.check_password(
        session,
        account,
        password,
        active=active,
        username=f"portal:{email or phone or (login or '')[:50]}",
        remote_addr=remote_addr,
        at=at,
        wrong=WRONG_LOGIN,
        locked=LOCKED,
    )
    return SignIn(None if error else account, error, status)


def start_session(
    session: Session,
    account: PortalAccount,
    *,
    remote_addr: str | None,
    user_agent: str | None,
    request_id: str | None = None,
) -> str:
    """A new portal session of a browser; returns the cookie value."""
    secret = secrets.token_urlsafe(32)
    _signed_in(
        session,
        account,
        secret,
        BROWSER,
        now() + timedelta(hours=get_settings().session_hours),
        remote_addr=remote_addr,
        user_agent=user_agent,
        request_id=request_id,
    )
    return secret


def issue_token(
    session: Session,
    account: PortalAccount,
    *,
    remote_addr: str | None,
    user_agent: str | None,
    request_id: str | None = None,
) -> tuple[str, PortalSession]:
    """A Bearer token of the contact API (a portal session of kind `api`), valid for
    `KEFU_ACCESS_TOKEN_MINUTES` like a staff access token; the plain value is returned once
    and only its SHA-256 is kept."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = _signed_in(
        session,
        account,
        plain,
        API,
        now() + timedelta(minutes=get_settings().access_token_minutes),
        remote_addr=remote_addr,
        user_agent=user_agent,
        request_id=request_id,
    )
    return plain, row


def _signed_in(
    session: Session,
    account: PortalAccount,
    secret: str,
    kind: str,
    expires_at: datetime,
    *,
    remote_addr: str | None,
    user_agent: str | None,
    request_id: str | None,
) -> PortalSession:
    row = PortalSession(
        id=auth.digest(secret),
        account_id=account.id,
        kind=kind,
        csrf_token=secrets.token_urlsafe(32),  # used by browsers only
        created_at=now(),
        expires_at=expires_at,
        remote_addr=remote_addr,
        user_agent=(user_agent or "")[:300],
    )
    session.add(row)
    contact, customer = session.execute(
        select(Contact, Customer)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(Contact.id == account.contact_id)
    ).one()
    viewer = contact_viewer(contact, customer, request_id=request_id, remote_addr=remote_addr)
    record(
        session,
        viewer,
        "portal.login",
        "contact",
        contact.id,
        {"kind": {"before": None, "after": kind}} if kind == API else None,
    )
    return row


@dataclass
class Signed:
    viewer: Viewer
    session: PortalSession
    contact: Contact
    customer: Customer


def session_viewer(
    session: Session,
    secret: str,
    *,
    kind: str = BROWSER,
    request_id: str | None = None,
    remote_addr: str | None = None,
) -> Signed | None:
    """The signed-in contact of a portal session of this kind (a browser's cookie, an API
    client's Bearer token), in one query; None when it ended."""
    row = session.execute(
        select(PortalSession, Contact, Customer)
        .join(PortalAccount, PortalAccount.id == PortalSession.account_id)
        .join(Contact, Contact.id == PortalAccount.contact_id)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(
            PortalSession.id == auth.digest(secret),
            PortalSession.kind == kind,
            PortalSession.expires_at > now(),
            Contact.portal_access.is_(True),
        )
    ).first()
    if row is None:
        return None
    web_session, contact, customer = row
    viewer = contact_viewer(contact, customer, request_id=request_id, remote_addr=remote_addr)
    return Signed(viewer, web_session, contact, customer)


def end_session(session: Session, secret: str, kind: str = BROWSER) -> None:
    """Sign out: the browser's session, or the API token, ends at once."""
    session.execute(
        delete(PortalSession).where(
            PortalSession.id == auth.digest(secret), PortalSession.kind == kind
        )
    )


def set_locale(session: Session, viewer: Viewer, locale: str) -> None:
    """The contact's own language choice, kept on the contact (it is their preference)."""
    if locale not in LOCALES:
        raise Invalid.field("locale", N_("Unknown language."))
    contact = session.get(Contact, viewer.contact_id) if viewer.contact_id else None
    if contact is None:
        raise NotFound()
    if contact.locale != locale:
        record(
            session,
            viewer,
            "contact.update",
            "contact",
            contact.id,
            {"locale": {"before": contact.locale, "after": locale}},
        )
        contact.locale = locale
        session.flush()


@dataclass
class AccountState:
    activated: bool
    last_login_at: object
    invitation_expires_at: object  # of the open link, if any


def account_states(session: Session, contact_ids: list[int]) -> dict[int, AccountState]:
    """What the customer page shows beside each contact: signed up yet, an open link."""
    if not contact_ids:
        return {}
    at = now()
    out: dict[int, AccountState] = {}
    for account in session.scalars(
        select(PortalAccount).where(PortalAccount.contact_id.in_(contact_ids))
    ):
        out[account.contact_id] = AccountState(
            account.activated_at is not None, account.last_login_at, None
        )
    for inv in session.scalars(
        select(PortalInvitation).where(
            PortalInvitation.contact_id.in_(contact_ids),
            PortalInvitation.used_at.is_(None),
            PortalInvitation.revoked_at.is_(None),
            PortalInvitation.expires_at > at,
        )
    ):
        state = out.get(inv.contact_id)
        if state is not None:
            state.invitation_expires_at = inv.expires_at
    return out


def purge_expired(session: Session) -> dict[str, int]:
    """Housekeeping: forget ended portal sessions and invitations over a month old."""
    at = now()
    s = session.execute(delete(PortalSession).where(PortalSession.expires_at <= at))
    i = session.execute(
        delete(PortalInvitation).where(PortalInvitation.expires_at < at - timedelta(days=30))
    )
    return {"portal_sessions": s.rowcount or 0, "portal_invitations": i.rowcount or 0}  # type: ignore[attr-defined]
