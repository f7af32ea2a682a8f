"""POST /api/v1/customers/import: check or apply a CSV / Excel import of customers, contacts
or revenue (multipart upload). Included before the customers router."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kefu.api.v1.deps import CurrentViewer, Db
from kefu.api.v1.problems import MEDIA_TYPE
from kefu.customers import import_format, importing
from kefu.i18n import N_, gettext, ngettext, set_locale

router = APIRouter(prefix="/customers/import", tags=["customers"])


class ImportErrorOut(BaseModel):
    row: int
    field: str
    column: str | None = None
    message: str


class ImportReportOut(BaseModel):
    dry_run: bool
    kind: str
    rows: int
    created: int
    updated: int
    unchanged: int
    applied: bool
    errors: list[ImportErrorOut]


@router.post(
    "",
    response_model=ImportReportOut,
    summary="Import customers, contacts or revenue from CSV or Excel",
    description="A multipart upload: `file` (CSV in UTF-8 or GBK, or .xlsx), `kind` "
    "(customers, contacts, revenue) and `dry_run` (default true). A dry run reports every "
    "bad row (row number, field, reason) and what would be created or updated. With "
    "`dry_run=false` the import is all or nothing: any bad row answers 422 with the row "
    "errors and nothing is written. Needs the supervisor, manager or admin role; the "
    "rows must lie in the caller's scope.",
    responses={
        403: {"description": "The caller may not import."},
        422: {"description": "The file cannot be read, or (apply) a row is bad."},
    },
)
def import_customers(
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or .xlsx")],
    kind: Annotated[Literal["customers", "contacts", "revenue"], Form()] = "customers",
    dry_run: Annotated[bool, Form()] = True,
) -> Any:
    data = file.file.read(import_format.MAX_BYTES + 1)
    report = importing.import_file(
        db, viewer, data, kind=kind, filename=file.filename, dry_run=dry_run
    )
    set_locale(getattr(request.state, "locale", None) or viewer.locale)
    body = report.as_dict()
    if not dry_run and report.errors:
        bad_rows = len({e.row for e in report.errors})
        problem = {
            "type": "/problems/validation",
            "title": gettext(N_("Invalid input")),
            "status": 422,
            "detail": ngettext(
                "{n} row has errors; nothing was imported.",
                "{n} rows have errors; nothing was imported.",
                bad_rows,
            ),
            "instance": request.url.path,
            **body,
        }
        return JSONResponse(problem, status_code=422, media_type=MEDIA_TYPE)
    return ImportReportOut(**body)
