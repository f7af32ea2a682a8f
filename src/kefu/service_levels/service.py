"""Reading and editing service levels. An edit is a new version; old ones stay for the
tickets opened under them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from kefu.audit.service import diff, record
from kefu.cache import KeyedCache
from kefu.clock import now
from kefu.errors import Forbidden, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion, SlaTarget
from kefu.service_levels.schemas import ServiceLevelUpdate

FIELDS = (
    "name_zh",
    "name_en",
    "description",
    "content",
    "return_visit_hours",
    "return_visit_method",
    "visit_frequency_days",
    "is_24x7",
    "pause_on_hold",
)


def _load(session: Session, code: str) -> ServiceLevel:
    level = session.scalars(
        select(ServiceLevel)
        .where(ServiceLevel.code == code)
        .options(selectinload(ServiceLevel.current).selectinload(ServiceLevelVersion.targets))
        .execution_options(populate_existing=True)
    ).first()
    if level is None or level.current is None:
        raise NotFound()
    return level


def list_levels(session: Session) -> list[ServiceLevel]:
    return list(
        session.scalars(
            select(ServiceLevel)
            .order_by(ServiceLevel.rank.desc())
            .options(selectinload(ServiceLevel.current).selectinload(ServiceLevelVersion.targets))
        )
    )


def get_level(session: Session, code: str) -> ServiceLevel:
    return _load(session, code)


def versions(session: Session, code: str) -> list[ServiceLevelVersion]:
    _load(session, code)
    return list(
        session.scalars(
            select(ServiceLevelVersion)
            .where(ServiceLevelVersion.level_code == code)
            .order_by(ServiceLevelVersion.version.desc())
            .options(selectinload(ServiceLevelVersion.targets))
        )
    )


def _targets_dump(version: ServiceLevelVersion) -> list[dict[str, object]]:
    return [
        {
            "priority": t.priority,
            "category_code": t.category_code,
            "first_response_minutes": t.first_response_minutes,
            "next_response_minutes": t.next_response_minutes,
            "resolution_minutes": t.resolution_minutes,
        }
        for t in version.targets
    ]


def update_level(
    session: Session, viewer: Viewer, code: str, data: ServiceLevelUpdate
) -> ServiceLevel:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may change service levels."))
    level = session.scalars(
        select(ServiceLevel).where(ServiceLevel.code == code).with_for_update()
    ).first()
    if level is None:
        raise NotFound()
    level = _load(session, code)
    old = level.current
    assert old is not None
    fields = data.model_dump(exclude_unset=True, mode="json")
    before = {f: getattr(old, f) for f in FIELDS} | {"targets": _targets_dump(old)}
    number = (
        session.scalar(
            select(func.max(ServiceLevelVersion.version)).where(
                ServiceLevelVersion.level_code == code
            )
        )
        or 0
    ) + 1
    new = ServiceLevelVersion(
        level_code=code,
        version=number,
        created_at=now(),
        created_by=viewer.username,
        **{
            f: fields[f]
            if f in fields and (fields[f] is not None or f == "visit_frequency_days")
            else getattr(old, f)
            for f in FIELDS
        },
    )
    source = fields.get("targets") or _targets_dump(old)
    new.targets = [SlaTarget(**t) for t in source]
    session.add(new)
    session.flush()
    level.current_version_id = new.id
    session.flush()
    after = {f: getattr(new, f) for f in FIELDS} | {"targets": _targets_dump(new)}
    record(
        session,
        viewer,
        "service_level.update",
        "service_level",
        code,
        diff(before, after) | {"version": {"before": old.version, "after": new.version}},
    )
    return _load(session, code)


def targets_for(
    session: Session, version_id: int, priority: str, category_code: str | None = None
) -> SlaTarget | None:
    """The target a ticket of this priority (and category) gets under one version:
    the category's own row when there is one, else the priority's general row."""
    rows = session.scalars(
        select(SlaTarget).where(
            SlaTarget.version_id == version_id,
            SlaTarget.priority == priority,
            (SlaTarget.category_code == category_code) | SlaTarget.category_code.is_(None),
        )
    ).all()
    specific = [r for r in rows if r.category_code is not None]
    chosen = specific or list(rows)
    return chosen[0] if chosen else None


@dataclass(frozen=True)
class Minutes:
    first_response: int
    next_response: int
    resolution: int


@dataclass(frozen=True)
class Terms:
    """What one (immutable) version promises, for computing a ticket's due times."""

    version_id: int
    is_24x7: bool
    pause_on_hold: bool
    targets: dict[tuple[str, str | None], Minutes]  # (priority, category or None)

    def target(self, priority: str, category_code: str | None = None) -> Minutes | None:
        """The category's own row when there is one, else the priority's general row."""
        return self.targets.get((priority, category_code)) or self.targets.get((priority, None))


# Terms of versions by id (see kefu.cache). A version is never edited: an edit makes a new
# one and the level points at it, so the current version's id is read on every use.
_TERMS: KeyedCache[Terms] = KeyedCache()


def terms(session: Session, version_id: int) -> Terms | None:
    hit = _TERMS.get(version_id)
    if hit is not None:
        return hit
    version = session.scalars(
        select(ServiceLevelVersion)
        .where(ServiceLevelVersion.id == version_id)
        .options(selectinload(ServiceLevelVersion.targets))
    ).first()
    if version is None:
        return None
    hit = Terms(
        version.id,
        version.is_24x7,
        version.pause_on_hold,
        {
            (t.priority, t.category_code): Minutes(
                t.first_response_minutes, t.next_response_minutes, t.resolution_minutes
            )
            for t in version.targets
        },
    )
    return _TERMS.put(version_id, hit)
