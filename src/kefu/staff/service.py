"""Actions on staff. Deactivation ends sessions and tokens in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from kefu.audit.service import diff, record, snapshot
from kefu.auth import passwords
from kefu.auth.models import ApiToken, WebSession
from kefu.clock import now
from kefu.errors import Forbidden, Invalid
from kefu.i18n import N_
from kefu.scope import Viewer, get_visible
from kefu.staff.models import Staff, StaffRole
from kefu.staff.schemas import StaffCreate, StaffUpdate
from kefu.units.models import Unit

AUDITED = ("username", "display_name", "unit_id", "roles", "email", "phone", "locale", "is_active")


def _require_staff_admin(viewer: Viewer) -> None:
    if not viewer.has_role("manager"):
        raise Forbidden(N_("Only managers and administrators may manage staff."))


def _check_roles(viewer: Viewer, roles: Sequence[str]) -> None:
    if "admin" in roles and not viewer.is_admin:
        raise Invalid.field("roles", N_("Only administrators may grant the admin role."))


def _unit(session: Session, viewer: Viewer, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    in_view = unit is not None and (
        viewer.is_admin or (viewer.unit_path is not None and unit.path.startswith(viewer.unit_path))
    )
    if unit is None or not in_view:
        raise Invalid.field("unit_id", N_("No such unit."))
    if not unit.is_active:
        raise Invalid.field("unit_id", N_("This unit is inactive."))
    return unit


def get_staff(session: Session, viewer: Viewer, staff_id: int, for_update: bool = False) -> Staff:
    return get_visible(
        session,
        Staff,
        staff_id,
        viewer,
        for_update=for_update,
        options=(selectinload(Staff.role_rows),),
    )


def active_by_username(session: Session, username: str) -> Staff | None:
    return session.scalars(
        select(Staff)
        .where(Staff.username == username.strip().lower(), Staff.is_active.is_(True))
        .options(selectinload(Staff.role_rows))
    ).first()


def _reload(session: Session, staff_id: int) -> Staff:
    return session.scalars(
        select(Staff)
        .where(Staff.id == staff_id)
        .options(selectinload(Staff.role_rows))
        .execution_options(populate_existing=True)
    ).one()


def create_staff(session: Session, viewer: Viewer, data: StaffCreate) -> Staff:
    _require_staff_admin(viewer)
    _check_roles(viewer, data.roles)
    _unit(session, viewer, data.unit_id)
    if session.scalar(
        select(func.count()).select_from(Staff).where(Staff.username == data.username)
    ):
        raise Invalid.field("username", N_("This username is already taken."))
    staff = Staff(
        username=data.username,
        display_name=data.display_name,
        unit_id=data.unit_id,
        email=data.email,
        phone=data.phone,
        locale=data.locale,
        password_hash=passwords.hash_password(data.password) if data.password else None,
        role_rows=[StaffRole(role=r) for r in sorted(set(data.roles))],
    )
    session.add(staff)
    session.flush()
    record(session, viewer, "staff.create", "staff", staff.id, diff({}, snapshot(staff, AUDITED)))
    return staff


def update_staff(session: Session, viewer: Viewer, staff_id: int, data: StaffUpdate) -> Staff:
    fields = data.model_dump(exclude_unset=True)
    own_profile = staff_id == viewer.staff_id and set(fields) <= {
        "display_name",
        "email",
        "phone",
        "locale",
        "password",
    }
    staff = get_staff(session, viewer, staff_id, for_update=True)  # out of scope: 404 first
    if not own_profile:
        _require_staff_admin(viewer)
    if "admin" in staff.roles and not viewer.is_admin and not own_profile:
        raise Forbidden(N_("Only administrators may change an administrator."))
    before = snapshot(staff, AUDITED)
    if fields.get("unit_id") is not None and fields["unit_id"] != staff.unit_id:
        staff.unit_id = _unit(session, viewer, fields["unit_id"]).id
    for name in ("display_name", "email", "phone", "locale"):
        if name in fields and (fields[name] is not None or name in ("email", "phone")):
            setattr(staff, name, fields[name])
    if fields.get("roles") is not None:
        _check_roles(viewer, fields["roles"])
        wanted = set(fields["roles"])
        if "admin" in staff.roles and "admin" not in wanted:
            _check_not_last_admin(session, staff, "roles")
        staff.role_rows = [r for r in staff.role_rows if r.role in wanted] + [
            StaffRole(role=r) for r in sorted(wanted - set(staff.roles))
        ]
    if fields.get("password"):
        staff.password_hash = passwords.hash_password(fields["password"])
        staff.failed_logins = 0
        staff.locked_until = None
    if fields.get("is_active") is not None and fields["is_active"] != staff.is_active:
        if staff.id == viewer.staff_id and not fields["is_active"]:
            raise Invalid.field("is_active", N_("You cannot deactivate yourself."))
        if not fields["is_active"]:
            if "admin" in staff.roles:
                _check_not_last_admin(session, staff, "is_active")
            end_sessions(session, staff.id)
        staff.is_active = fields["is_active"]
    session.flush()
    staff = _reload(session, staff_id)
    changes = diff(before, snapshot(staff, AUDITED))
    if "password" in fields:
        changes["password"] = {"before": "***", "after": "***"}
    if changes:
        record(session, viewer, "staff.update", "staff", staff.id, changes)
    return staff


def deactivate_staff(session: Session, viewer: Viewer, staff_id: int) -> Staff:
    return update_staff(session, viewer, staff_id, StaffUpdate(is_active=False))


def end_sessions(session: Session, staff_id: int) -> None:
    """Sign the person out everywhere at once: sessions deleted, tokens revoked."""
    session.execute(delete(WebSession).where(WebSession.staff_id == staff_id))
    session.execute(
        update(ApiToken)
        .where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )


def _check_not_last_admin(session: Session, staff: Staff, field: str) -> None:
    # Lock every active admin row so two admins cannot demote each other at once.
    admins = session.scalars(
        select(Staff.id)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "admin", Staff.is_active.is_(True))
        .with_for_update(of=Staff)
    ).all()
    if set(admins) <= {staff.id}:
        raise Invalid.field(field, N_("The last active administrator cannot be removed."))
