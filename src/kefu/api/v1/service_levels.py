from __future__ import annotations

from fastapi import APIRouter, Request

from kefu.api.v1.deps import CurrentViewer, Db
from kefu.service_levels import service
from kefu.service_levels.models import ServiceLevelVersion
from kefu.service_levels.schemas import ServiceLevelOut, ServiceLevelUpdate, SlaTargetOut

router = APIRouter(prefix="/service-levels", tags=["service levels"])


def out(code: str, rank: int, v: ServiceLevelVersion, locale: str) -> ServiceLevelOut:
    return ServiceLevelOut(
        code=code,
        rank=rank,
        version_id=v.id,
        version=v.version,
        name=v.name_en if locale == "en" else v.name_zh,
        name_zh=v.name_zh,
        name_en=v.name_en,
        description=v.description,
        content=v.content,
        return_visit_hours=v.return_visit_hours,
        return_visit_method=v.return_visit_method,
        visit_frequency_days=v.visit_frequency_days,
        is_24x7=v.is_24x7,
        pause_on_hold=v.pause_on_hold,
        created_at=v.created_at,
        created_by=v.created_by,
        targets=[SlaTargetOut.model_validate(t) for t in v.targets],
    )


def _locale(request: Request, viewer_locale: str) -> str:
    return getattr(request.state, "accept_locale", None) or viewer_locale


@router.get("", response_model=list[ServiceLevelOut], summary="Service levels, 5A first")
def list_levels(request: Request, viewer: CurrentViewer, db: Db) -> list[ServiceLevelOut]:
    loc = _locale(request, viewer.locale)
    return [out(lv.code, lv.rank, lv.current, loc) for lv in service.list_levels(db) if lv.current]


@router.get("/{code}", response_model=ServiceLevelOut)
def get_level(code: str, request: Request, viewer: CurrentViewer, db: Db) -> ServiceLevelOut:
    level = service.get_level(db, code)
    assert level.current is not None
    return out(level.code, level.rank, level.current, _locale(request, viewer.locale))


@router.patch(
    "/{code}",
    response_model=ServiceLevelOut,
    summary="Change a level: makes a new version; open tickets keep theirs",
)
def update_level(
    code: str, body: ServiceLevelUpdate, request: Request, viewer: CurrentViewer, db: Db
) -> ServiceLevelOut:
    level = service.update_level(db, viewer, code, body)
    assert level.current is not None
    return out(level.code, level.rank, level.current, _locale(request, viewer.locale))


@router.get(
    "/{code}/versions",
    response_model=list[ServiceLevelOut],
    summary="Every version of a level, newest first",
)
def list_versions(
    code: str, request: Request, viewer: CurrentViewer, db: Db
) -> list[ServiceLevelOut]:
    level = service.get_level(db, code)
    loc = _locale(request, viewer.locale)
    return [out(level.code, level.rank, v, loc) for v in service.versions(db, code)]
