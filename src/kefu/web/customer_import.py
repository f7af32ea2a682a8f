"""Importing customers, contacts or revenue from a CSV or Excel file (supervisors, managers,
administrators): "Check" runs a dry run and shows the report, "Import" applies the file.

Nothing is kept between the two steps: the Import button submits the file again (with HTMX
the chosen file is still in the form; without it, the person chooses it again). The report
carries only a digest of the checked file and kind, so an apply of a file that changed
since it was checked is checked again instead. The apply is all or nothing (the service
writes only when no row is bad), inside a savepoint so that a refusal leaves nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from kefu.customers import import_format, importing
from kefu.customers.importing import ImportReport
from kefu.errors import FieldError, Forbidden, Invalid
from kefu.i18n import N_
from kefu.web.common import CurrentMe, Db, Form, Me, PostedForm, is_htmx, render, text

router = APIRouter()

URL = "/customers/import"
KIND_OPTIONS = [
    ("customers", N_("Customers")),
    ("contacts", N_("Contacts")),
    ("revenue", N_("Revenue")),
]
REFUSED = N_("Importing needs the supervisor, manager or administrator role.")
NO_FILE = N_("Choose a CSV or Excel file.")
CHANGED = N_("The file or its kind changed since it was checked: here is its check.")


def _allowed(me: Me) -> None:
    """The service's own refusal (403, as the API answers), before anything is read."""
    if not importing.can_import(me.viewer):
        raise Forbidden(REFUSED)


def _digest(data: bytes, kind: str, me: Me) -> str:
    """Names the checked file and kind for this session (never the file itself)."""
    key = me.csrf.encode()
    return hmac.new(key, kind.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def _columns() -> dict[str, list[tuple[str, str]]]:
    """The documented headers of each kind: (Chinese, English)."""
    return {kind: [(c.zh, c.name) for c in cols] for kind, cols in importing.COLUMNS.items()}


def _page(
    request: Request,
    form: Form,
    *,
    report: ImportReport | None = None,
    digest: str = "",
    changed: bool = False,
    status: int = 200,
) -> Response:
    bad_rows = len({e.row for e in report.errors}) if report else 0
    ctx: dict[str, Any] = {
        "form": form,
        "kind_options": KIND_OPTIONS,
        "kind_label": dict(KIND_OPTIONS),
        "columns": _columns(),
        "report": report,
        "bad_rows": bad_rows,
        "digest": digest,
        "changed": changed,
        # Without HTMX the browser forgets the chosen file: the person chooses it again.
        "choose_again": not is_htmx(request),
    }
    return render(request, "customers/import.html", ctx, status=status)


@router.get(URL)
def import_page(request: Request, me: CurrentMe) -> Response:
    _allowed(me)
    return _page(request, Form({"kind": "customers", "file": ""}, key="import"))


@router.post(URL)
def import_upload(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    _allowed(me)
    kind = text(form, "kind") or "customers"
    values = {"kind": kind, "file": ""}
    upload = form.get("file")
    data = b""
    filename = None
    if isinstance(upload, UploadFile):
        data = upload.file.read(import_format.MAX_BYTES + 1)
        filename = upload.filename or None
    if not data and not filename:
        return _page(request, Form(values, [FieldError("file", NO_FILE)], key="import"), status=422)
    digest = _digest(data, kind, me)
    apply = text(form, "action") == "apply"
    changed = apply and not hmac.compare_digest(text(form, "checked"), digest)
    dry_run = not apply or changed
    try:
        with db.begin_nested():  # a refused apply leaves nothing behind
            report = importing.import_file(
                db, me.viewer, data, kind=kind, filename=filename, dry_run=dry_run
            )
            if report.errors and not dry_run:
                raise _Refused(report)  # the service wrote nothing; roll back all the same
    except _Refused as refused:
        report = refused.report
    except Invalid as exc:
        db.expire_all()
        return _page(request, Form(values, exc.errors, key="import"), status=422)
    status = 422 if report.errors and not dry_run else 200
    return _page(
        request,
        Form(values, key="import"),
        report=report,
        digest=digest,
        changed=changed,
        status=status,
    )


class _Refused(Exception):
    def __init__(self, report: ImportReport) -> None:
        super().__init__()
        self.report = report
