"""Plain builder functions for tests (no factory framework)."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from kefu.auth import service as auth
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.models import Staff
from kefu.staff.schemas import StaffCreate
from kefu.units import service as unit_service
from kefu.units.models import Unit
from kefu.units.schemas import UnitCreate

_seq = itertools.count(1)
PASSWORD = "correct horse 9"


def make_unit(
    db: Session,
    name: str | None = None,
    parent: Unit | None = None,
    region_code: str = "330000",
    **kw: object,
) -> Unit:
    data = UnitCreate(
        name=name or f"单位{next(_seq)}",
        parent_id=parent.id if parent else None,
        region_code=region_code,
        **kw,
    )  # type: ignore[arg-type]
    unit = unit_service.create_unit(db, SYSTEM, data)
    db.flush()
    return unit


def make_staff(
    db: Session,
    unit: Unit,
    username: str | None = None,
    roles: tuple[str, ...] = ("agent",),
    password: str = PASSWORD,
    display_name: str | None = None,
    locale: str = "zh_CN",
) -> Staff:
    n = next(_seq)
    data = StaffCreate(
        username=username or f"user{n}",
        display_name=display_name or f"员工{n}",
        unit_id=unit.id,
        roles=list(roles),
        password=password,  # type: ignore[arg-type]
        locale=locale,
    )  # type: ignore[arg-type]
    staff = staff_service.create_staff(db, SYSTEM, data)
    db.flush()
    return staff


def token_for(db: Session, staff: Staff) -> dict[str, str]:
    plain, _ = auth.issue_token(db, SYSTEM, staff, kind="access")
    db.commit()
    return {"Authorization": f"Bearer {plain}"}


def make_customer(
    db: Session,
    unit: Unit,
    name: str | None = None,
    parent=None,  # type: ignore[no-untyped-def]
    region_code: str = "330106",
    **kw: object,
):
    from kefu.customers import service as customer_service
    from kefu.customers.schemas import CustomerCreate

    data = CustomerCreate(
        name=name or f"客户{next(_seq)}有限公司",
        owning_unit_id=unit.id,
        parent_id=parent.id if parent else None,
        region_code=region_code,
        **kw,
    )  # type: ignore[arg-type]
    customer = customer_service.create_customer(db, SYSTEM, data)
    db.flush()
    return customer
