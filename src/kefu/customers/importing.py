"""Importing customers, contacts and revenue from CSV or Excel files.

One entry point, `import_file()`, serves the API, the CLI and (later) the web. It reads the
file (`import_format`), maps the header row onto fields by Chinese or English names, and
checks every row exactly as the API checks one record: the Pydantic schemas of
`customers.schemas` and the same reference rules as `customers.service` (the owning unit,
the account manager and the parent must lie in the importing viewer's view; codes stay
unique). Every bad row is reported with its row number, field and reason (a catalogue
msgid, translated at the edge).

A dry run stops there. An apply writes only when no row is bad, and then set-based: the
references are resolved with a few set queries, new rows are inserted in bulk with their
ids, paths and depths computed beforehand (`tree.child_path`, exactly as one-by-one
creation makes them), changed rows are updated in bulk, moved group members use
`tree.move_subtree`, and the audit rows (one per created or updated record, plus one
summary) are inserted in bulk. The service only flushes: the edge owns the transaction, so
a failure anywhere writes nothing.

Re-importing a file updates instead of duplicating: a customer row matches an existing
customer by its unified social credit code or its external id; a contact matches a contact
of the same customer with the same name; a revenue row matches by (customer, source_ref),
or, without source_ref, an identical record.
"""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import field as dataclass_field
from decimal import Decimal
from json.encoder import encode_basestring
from types import SimpleNamespace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import ARRAY, JSON, any_, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kefu import tree
from kefu.audit.models import AuditEntry
from kefu.audit.service import _plain, diff, record
from kefu.clock import now
from kefu.customers import import_format
from kefu.customers.import_format import ImportFileError, Table
from kefu.customers.models import Contact, Customer, Industry, RevenueRecord
from kefu.customers.schemas import ContactCreate, CustomerCreate, RevenueCreate
from kefu.customers.service import AUDITED, CONTACT_AUDITED
from kefu.db import is_postgres
from kefu.errors import Conflict, FieldError, Forbidden, Invalid
from kefu.i18n import N_, gettext
from kefu.scope import Viewer, condition, in_subtree
from kefu.staff.models import Staff
from kefu.units.models import Unit
from kefu.validation import FALLBACK, PYDANTIC_MESSAGES, KefuValueError

KINDS = ("customers", "contacts", "revenue")
IMPORT_ROLES = ("supervisor", "manager", "admin")
# Values per IN (...) list: well below SQLite's and PostgreSQL's bind-parameter limits.
CHUNK = 5000
# Report progress every this many rows.
PROGRESS_EVERY = 2000

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): phase is "check" (rows validated) or "write" (steps)."""


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One problem: the row as a spreadsheet numbers it (header = 1), the field, the reason."""

    row: int
    field: str
    message: str  # a catalogue msgid
    params: dict[str, Any] = dataclass_field(default_factory=dict)
    column: str | None = None  # the header as written in the file

    def text(self) -> str:
        """The reason in the current language (the edge sets it)."""
        try:
            return gettext(self.message, **self.params)
        except (KeyError, IndexError):
            return gettext(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "column": self.column, "message": self.text()}


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False
    format: str | None = None
    encoding: str | None = None

    def sorted_errors(self) -> list[RowError]:
        return sorted(self.errors, key=lambda e: (e.row, e.field))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "kind": self.kind,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "applied": self.applied,
            "errors": [e.as_dict() for e in self.sorted_errors()],
        }


# --- the columns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str  # the import field (also the English header)
    zh: str  # the Chinese header we document
    aliases: tuple[str, ...] = ()


CUSTOMER_COLUMNS = (
    Column("name", "客户名称", ("名称", "客户全称", "单位名称", "企业名称", "customer name")),
    Column("short_name", "简称", ("客户简称", "short name")),
    Column("credit_code", "统一社会信用代码", ("信用代码", "社会信用代码", "uscc", "credit code")),
    Column("external_id", "外部编号", ("外部id", "外部系统编号", "external id")),
    Column("parent", "上级客户", ("上级", "所属集团", "parent customer")),
    Column("industry", "行业", ("所属行业", "行业代码", "industry code", "industry_code")),
    Column("region_code", "行政区划代码", ("行政区划", "区划代码", "region", "region code")),
    Column("owning_unit", "归属单位", ("所属单位", "归属机构", "owning unit", "owning_unit_id")),
    Column("account_manager", "客户经理", ("account manager", "account_manager_id")),
    Column("is_important", "重要客户", ("important", "is important")),
    Column("is_group", "集团客户", ("group", "is group")),
    Column("is_potential", "潜在客户", ("potential", "is potential")),
    Column("status", "状态", ("客户状态",)),
    Column("notes", "备注", ("说明", "note", "remarks")),
)
CONTACT_COLUMNS = (
    Column("customer", "客户", ("所属客户", "客户信用代码", "客户编号")),
    Column("name", "姓名", ("联系人", "联系人姓名", "contact")),
    Column("title", "职务", ("职位", "position")),
    Column("phone", "电话", ("手机", "联系电话", "手机号", "mobile", "tel")),
    Column("email", "邮箱", ("电子邮件", "电子邮箱", "e-mail", "mail")),
    Column("preferred_channel", "首选渠道", ("联系渠道", "渠道", "channel", "preferred channel")),
    Column("locale", "语言", ("language",)),
    Column("portal_access", "门户访问", ("开通门户", "portal", "portal access")),
    Column("is_group_admin", "集团管理员", ("group admin", "is group admin")),
)
REVENUE_COLUMNS = (
    Column("customer", "客户", ("所属客户", "客户信用代码", "客户编号")),
    Column("date", "日期", ("收入日期", "入账日期", "revenue date")),
    Column("amount", "金额", ("收入金额", "收入", "revenue")),
    Column("currency", "币种", ("货币",)),
    Column("business_line", "业务线", ("业务", "产品线", "business line")),
    Column("source_ref", "来源单号", ("单号", "来源编号", "source ref", "reference", "ref")),
)
COLUMNS = {"customers": CUSTOMER_COLUMNS, "contacts": CONTACT_COLUMNS, "revenue": REVENUE_COLUMNS}
# Headers a spreadsheet often has and an import ignores.
IGNORED_HEADERS = ("序号", "行号", "no", "no.", "#")

STATUS_WORDS = {
    "正常": "active",
    "活跃": "active",
    "active": "active",
    "休眠": "dormant",
    "dormant": "dormant",
    "流失": "lost",
    "lost": "lost",
}
CHANNEL_WORDS = {
    "电话": "phone",
    "phone": "phone",
    "邮件": "email",
    "电子邮件": "email",
    "邮箱": "email",
    "email": "email",
    "e-mail": "email",
    "短信": "sms",
    "sms": "sms",
    "微信": "wechat",
    "wechat": "wechat",
    "门户": "portal",
    "portal": "portal",
}
LOCALE_WORDS = {
    "中文": "zh_CN",
    "简体中文": "zh_CN",
    "zh": "zh_CN",
    "zh_cn": "zh_CN",
    "zh-cn": "zh_CN",
    "英文": "en",
    "英语": "en",
    "en": "en",
    "english": "en",
}

# Import fields ← the schema fields they fill (for naming the field of a schema error).
SCHEMA_FIELD = {
    "owning_unit_id": "owning_unit",
    "account_manager_id": "account_manager",
    "industry_code": "industry",
    "parent_id": "parent",
}

BAD_BOOL = N_("Must be yes or no (是/否, true/false, 1/0).")
NO_SUCH_CUSTOMER = N_("No such customer.")
NO_SUCH_UNIT = N_("No such unit.")
CODE_TAKEN = N_("Another customer already has this code.")


# --- the entry points ---------------------------------------------------------------------


def can_import(viewer: Viewer) -> bool:
    return viewer.has_role(*IMPORT_ROLES)


def import_file(
    session: Session,
    viewer: Viewer,
    data: bytes,
    *,
    kind: str = "customers",
    filename: str | None = None,
    dry_run: bool = True,
    progress: Progress | None = None,
) -> ImportReport:
    """Check (and unless `dry_run`, apply) an import file. Writes nothing when a row is bad.

    Raises Forbidden for a viewer without the supervisor, manager or admin role, and
    Invalid (field "file") when the file as a whole cannot be read.
    """
    if not can_import(viewer):
        raise Forbidden(N_("Importing needs the supervisor, manager or administrator role."))
    if kind not in KINDS:
        raise Invalid.field("kind", N_("Must be one of: {expected}."), expected=", ".join(KINDS))
    importer_class = {
        "customers": CustomerImport,
        "contacts": ContactImport,
        "revenue": RevenueImport,
    }[kind]
    with _cyclic_gc_paused():
        try:
            table = import_format.read_table(data, filename)
        except ImportFileError as exc:
            raise Invalid(errors=[FieldError("file", exc.message, exc.params)]) from exc
        importer = importer_class(session, viewer, table, progress)
        report = importer.run(dry_run=dry_run)
    if not dry_run and not report.errors:
        _record_summary(session, viewer, report, filename)
    return report


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file's rows are held in memory.

    An import makes millions of small objects that are all alive until it ends; every
    collection would walk them again for nothing (a third of a 100,000-row apply).
    Reference counting still frees everything; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def acting_viewer(session: Session, username: str, *, channel: str = "cli") -> Viewer | None:
    """The viewer of an active staff member (for `kefu import --as USERNAME`)."""
    from kefu.auth.service import viewer_for
    from kefu.staff.service import active_by_username

    staff = active_by_username(session, username)
    if staff is None:
        return None
    path = session.scalar(select(Unit.path).where(Unit.id == staff.unit_id))
    return viewer_for(staff, path, channel=channel)


# --- shared machinery ---------------------------------------------------------------------

T = TypeVar("T")


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    seq = list(values)
    for start in range(0, len(seq), CHUNK):
        yield seq[start : start + CHUNK]


def matching(session: Session, column: Any, values: Iterable[Any]) -> Iterator[Any]:
    """Conditions `column` is one of `values`: one array parameter on PostgreSQL (no
    statement with thousands of placeholders to build), IN lists of CHUNK on SQLite."""
    distinct = sorted(set(values))
    if not distinct:
        return
    if is_postgres(session):
        yield column == any_(bindparam(None, distinct, type_=ARRAY(column.type)))
        return
    for chunk in _chunks(distinct):
        yield column.in_(chunk)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy(session: Session, table: str, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows into `table` on the session's own connection (inside its transaction)."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    cols = ", ".join(_quote(c) for c in columns)
    with raw.cursor() as cur, cur.copy(f"COPY {_quote(table)} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys): COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if not is_postgres(session):
        for chunk in _chunks(rows):
            session.execute(insert(table), chunk)
        return
    columns = list(rows[0])
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    _copy(
        session,
        table.name,
        columns,
        ([json_text(r[c]) if c in json_cols else r[c] for c in columns] for r in rows),
    )


class _NotScalar(Exception):
    pass


def _scalar_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return encode_basestring(value)
    raise _NotScalar


def json_text(value: Any) -> str:
    """JSON text of a column value; audit changes ({field: {"before": x, "after": y}} of
    plain scalars, a hundred thousand of them per import) take a path three times faster
    than json.dumps."""
    if isinstance(value, dict):
        try:
            parts = []
            for key, change in value.items():
                if type(change) is not dict or change.keys() != {"before", "after"}:
                    raise _NotScalar
                parts.append(
                    f'{encode_basestring(key)}: {{"before": {_scalar_json(change["before"])}, '
                    f'"after": {_scalar_json(change["after"])}}}'
                )
            return "{" + ", ".join(parts) + "}"
        except _NotScalar:
            pass
    return json.dumps(value, ensure_ascii=False)


def bulk_update(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Update rows by id (dicts with "id" and the same other keys), set-based on PostgreSQL:
    COPY into a temporary table, then one UPDATE … FROM."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    if not is_postgres(session):
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(f"_v_{c}") for c in columns})
        )
        for chunk in _chunks(rows):
            session.execute(
                stmt, [{"_id": r["id"], **{f"_v_{c}": r[c] for c in columns}} for r in chunk]
            )
        return
    temp = f"kefu_import_{uuid.uuid4().hex[:12]}"
    cols = ", ".join(_quote(c) for c in ["id", *columns])
    session.execute(
        text(
            f"CREATE TEMPORARY TABLE {temp} AS SELECT {cols} FROM {_quote(table.name)} WITH NO DATA"
        )
    )
    _copy(session, temp, ["id", *columns], ([r[c] for c in ["id", *columns]] for r in rows))
    sets = ", ".join(f"{_quote(c)} = s.{_quote(c)}" for c in columns)
    session.execute(
        text(f"UPDATE {_quote(table.name)} AS t SET {sets} FROM {temp} AS s WHERE t.id = s.id")
    )
    session.execute(text(f"DROP TABLE {temp}"))


def allocate_ids(session: Session, model: Any, n: int) -> list[int]:
    """`n` fresh primary keys of `model`, so rows can be written with their paths at once.

    PostgreSQL draws them from the column's sequence (safe beside concurrent inserts);
    SQLite serialises writers, so the ids after the current maximum are ours.
    """
    if n == 0:
        return []
    table = model.__tablename__
    if is_postgres(session):
        return list(
            session.scalars(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": n},
            )
        )
    top = session.scalar(select(func.max(model.id))) or 0
    return list(range(top + 1, top + 1 + n))


class _Import:
    """What the three kinds share: header mapping, cells, errors, progress."""

    kind = ""
    columns: tuple[Column, ...] = ()
    # Columns without which no row can be matched or written.
    required: tuple[str, ...] = ()

    def __init__(
        self, session: Session, viewer: Viewer, table: Table, progress: Progress | None
    ) -> None:
        self.session = session
        self.viewer = viewer
        self.table = table
        self.progress = progress
        self.errors: list[RowError] = []
        self.index: dict[str, int] = {}
        self.headers = table.headers
        self.at = now()

    # header ---------------------------------------------------------------------------------

    def expected(self) -> str:
        return ", ".join(f"{c.zh}/{c.name}" for c in self.columns)

    def map_header(self) -> bool:
        """Map the header row; False (with errors) when the rows cannot be read with it."""
        aliases = {c.name: (c.zh, *c.aliases) for c in self.columns}
        index, unknown, twice = import_format.match_headers(self.headers, aliases, IGNORED_HEADERS)
        row = self.table.header_row
        if not index:
            raise Invalid(
                errors=[
                    FieldError(
                        "file",
                        N_(
                            "The header row (row {row}) names no known column. "
                            "Expected headers: {expected}."
                        ),
                        {"row": row, "expected": self.expected()},
                    )
                ]
            )
        for _, header in unknown:
            self.errors.append(
                RowError(
                    row,
                    header,
                    N_("Unknown column. Expected headers: {expected}."),
                    {"expected": self.expected()},
                    header,
                )
            )
        for _, header, name in twice:
            self.errors.append(RowError(row, name, N_("This column appears twice."), {}, header))
        for name in self.required:
            if name not in index:
                column = next(c for c in self.columns if c.name == name)
                self.errors.append(
                    RowError(
                        row,
                        name,
                        N_("The file has no column “{column}”."),
                        {"column": f"{column.zh}/{column.name}"},
                    )
                )
        self.index = index
        return not self.errors

    # cells ----------------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self.index

    def cell(self, cells: Sequence[str], name: str) -> str:
        i = self.index[name]
        return cells[i] if i < len(cells) else ""

    def column_of(self, name: str) -> str | None:
        i = self.index.get(name)
        return self.headers[i] if i is not None else None

    def error(self, at: int, name: str, message: str, /, **params: Any) -> None:
        self.errors.append(RowError(at, name, message, params, self.column_of(name)))

    def schema_errors(self, row: int, exc: ValidationError, skip: set[str]) -> None:
        for err in exc.errors():
            loc = err.get("loc") or ()
            schema_field = str(loc[0]) if loc else "row"
            name = SCHEMA_FIELD.get(schema_field, schema_field)
            if name in skip:
                continue  # already reported, in words closer to the file
            ctx = dict(err.get("ctx") or {})
            original = ctx.get("error")
            if isinstance(original, KefuValueError):
                self.error(row, name, original.msgid, **dict(original.params))
                continue
            msgid = PYDANTIC_MESSAGES.get(err["type"], FALLBACK)
            if err["type"] in ("string_too_short", "string_too_long") and name == "credit_code":
                msgid = N_(
                    "Not a valid unified social credit code (18 characters with a check digit)."
                )
            elif err["type"] == "string_too_short" and ctx.get("min_length", 1) > 1:
                msgid = N_("At least {min_length} characters.")
            if name == "currency" and err["type"] == "string_pattern_mismatch":
                msgid = N_("Must be a three-letter currency code such as CNY.")
            params = {
                k: (str(v) if isinstance(v, Decimal) else v)
                for k, v in ctx.items()
                if isinstance(v, str | int | float | Decimal)
            }
            self.error(row, name, msgid, **params)

    def tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            self.progress(phase, done, total)

    def flag(self, row: int, name: str, cells: Sequence[str], out: dict[str, Any]) -> None:
        raw = self.cell(cells, name)
        if not raw:
            out[name] = False
            return
        value = import_format.parse_bool(raw)
        if value is None:
            self.error(row, name, BAD_BOOL)
        else:
            out[name] = value

    # customers referenced by code -----------------------------------------------------------

    def visible_customers_by_code(self, refs: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Customers in view whose credit code or external id is one of `refs`:
        ({credit code: row}, {external id: row}); rows carry id, is_group and path."""
        by_code: dict[str, Any] = {}
        by_ext: dict[str, Any] = {}
        cols = (Customer.id, Customer.credit_code, Customer.external_id, Customer.is_group)
        codes = {r.upper() for r in refs if len(r) == 18}
        s, seen = self.session, condition(Customer, self.viewer)
        for where in matching(s, Customer.credit_code, codes):
            for row in s.execute(select(*cols).where(where, seen)):
                by_code[row.credit_code] = row
        for where in matching(s, Customer.external_id, refs):
            for row in s.execute(select(*cols).where(where, seen)):
                by_ext[row.external_id] = row
        return by_code, by_ext

    @staticmethod
    def find_customer(ref: str, by_code: dict[str, Any], by_ext: dict[str, Any]) -> Any:
        return by_code.get(ref.upper()) or by_ext.get(ref)

    # audit ----------------------------------------------------------------------------------

    def audit_row(self, action: str, obj_type: str, obj_id: Any, changes: dict[str, Any]) -> dict:
        v = self.viewer
        return {
            "at": self.at,
            "actor_id": v.staff_id,
            "actor_name": v.username,
            "channel": v.channel,
            "request_id": v.request_id,
            "remote_addr": v.remote_addr,
            "action": action,
            "object_type": obj_type,
            "object_id": str(obj_id),
            "changes": changes,
        }

    def write_audit(self, rows: list[dict[str, Any]]) -> None:
        bulk_insert(self.session, AuditEntry.__table__, rows)

    # the run --------------------------------------------------------------------------------

    def run(self, dry_run: bool) -> ImportReport:
        report = ImportReport(
            kind=self.kind,
            dry_run=dry_run,
            rows=len(self.table.rows),
            format=self.table.format,
            encoding=self.table.encoding,
        )
        self.session.flush()
        if self.map_header():
            self.check()
        report.errors = self.errors
        self.count(report)
        if not dry_run and not self.errors:
            try:
                self.write()
                self.session.flush()
            except IntegrityError as exc:  # a concurrent change took a code or a parent
                raise Conflict(
                    N_(
                        "These records changed while the file was imported; nothing was "
                        "imported. Run the import again."
                    )
                ) from exc
            # Bulk statements bypass the identity map: nothing loaded before may be trusted.
            self.session.expire_all()
            report.applied = True
        return report

    def check(self) -> None:
        raise NotImplementedError

    def count(self, report: ImportReport) -> None:
        raise NotImplementedError

    def write(self) -> None:
        raise NotImplementedError


def _record_summary(
    session: Session, viewer: Viewer, report: ImportReport, filename: str | None
) -> None:
    summary = {
        "kind": report.kind,
        "file": filename,
        "format": report.format,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
    }
    record(
        session,
        viewer,
        "customer.import",
        "import",
        uuid.uuid4().hex[:16],
        {k: {"before": None, "after": v} for k, v in summary.items() if v is not None},
    )
    session.flush()


# --- customers ----------------------------------------------------------------------------

FIELDS = tuple(f for f in AUDITED if f != "parent_id")  # CustomerCreate's, less the parent
CREATE_AUDIT_ORDER = tuple(sorted(AUDITED))  # the key order audit.service.diff gives
Key = tuple[str, int]  # ("id", customer id) for an existing customer, ("new", row index)
MISSING = object()


@dataclass
class _CustomerRow:
    number: int
    values: dict[str, Any]  # CustomerCreate fields from the file (MISSING: blank required)
    bad: set[str] = field(default_factory=set)  # import fields already reported
    credit_code: str | None = None
    external_id: str | None = None
    parent_ref: str | None = None
    existing: Any = None  # the matched customer's row (id, path, parent_id, AUDITED …)
    clean: dict[str, Any] = field(default_factory=dict)  # validated CustomerCreate fields
    parent: Key | None = None
    key: Key = ("new", 0)
    changed: bool = False
    field_changes: dict[str, Any] = field(default_factory=dict)


class CustomerImport(_Import):
    kind = "customers"
    columns = CUSTOMER_COLUMNS

    def check(self) -> None:
        if not (self.has("name") or self.has("credit_code") or self.has("external_id")):
            self.error(
                self.table.header_row,
                "name",
                N_("The file has no column “{column}”."),
                column="客户名称/name",
            )
            return
        self.load_references()
        rows = self.parse_rows()
        self.match(rows)
        total = len(rows)
        for n, row in enumerate(rows, start=1):
            self.validate(row)
            self.tick("check", n, total)
        self.resolve_parents(rows)
        self.find_cycles(rows)
        self.rows = rows

    # references -------------------------------------------------------------------------

    def load_references(self) -> None:
        s, v = self.session, self.viewer
        self.units_by_id: dict[int, str] = {}
        self.units_by_name: dict[str, list[int]] = {}
        if self.has("owning_unit"):
            units = select(Unit.id, Unit.name)
            if not v.is_admin:
                units = units.where(in_subtree(Unit.path, v))
            for uid, name in s.execute(units):
                self.units_by_id[uid] = name
                self.units_by_name.setdefault(name, []).append(uid)
        self.industries: dict[str, str] = {}
        if self.has("industry"):
            for code, zh, en in s.execute(
                select(Industry.code, Industry.name_zh, Industry.name_en)
            ):
                self.industries[en.lower()] = code
                self.industries[zh] = code
            for code in s.scalars(select(Industry.code)):
                self.industries[code.lower()] = code
        self.staff: dict[str, int] = {}
        if self.has("account_manager"):
            names = {
                self.cell(cells, "account_manager").lower()
                for _, cells in self.table.rows
                if self.cell(cells, "account_manager")
            }
            for where in matching(s, Staff.username, names):
                stmt = select(Staff.username, Staff.id).where(
                    where, Staff.is_active.is_(True), condition(Staff, v)
                )
                self.staff.update({u: i for u, i in s.execute(stmt)})

    def unit_id(self, row: int, raw: str) -> int | None:
        if raw.isdigit() and int(raw) in self.units_by_id:
            return int(raw)
        ids = self.units_by_name.get(raw, [])
        if len(ids) == 1:
            return ids[0]
        if len(ids) > 1:
            self.error(
                row,
                "owning_unit",
                N_("Several units in your view have this name: give the unit's id."),
            )
        else:
            self.error(row, "owning_unit", NO_SUCH_UNIT)
        return None

    # rows -------------------------------------------------------------------------------

    def parse_rows(self) -> list[_CustomerRow]:
        """Cells → CustomerCreate fields, references resolved from the sets loaded before.

        Written for speed (a 100,000-row file passes here): column positions are looked up
        once, not per cell.
        """
        ix = self.index
        width = len(self.headers)
        required: list[tuple[str, int]] = [(n, ix[n]) for n in ("name", "region_code") if n in ix]
        optional: list[tuple[str, int]] = [
            (n, ix[n]) for n in ("short_name", "external_id") if n in ix
        ]
        flags: list[tuple[str, int]] = [
            (n, ix[n]) for n in ("is_important", "is_group", "is_potential") if n in ix
        ]
        i_notes, i_code, i_parent = ix.get("notes"), ix.get("credit_code"), ix.get("parent")
        i_industry, i_unit = ix.get("industry"), ix.get("owning_unit")
        i_manager, i_status = ix.get("account_manager"), ix.get("status")
        parse_bool = import_format.parse_bool
        industries, staff, errors = self.industries, self.staff, self.errors
        rows: list[_CustomerRow] = []
        for number, cells in self.table.rows:
            if len(cells) < width:
                cells = [*cells, *([""] * (width - len(cells)))]
            before = len(errors)
            values: dict[str, Any] = {}
            out = _CustomerRow(number, values)
            for name, i in required:
                values[name] = cells[i] or MISSING
            for name, i in optional:
                values[name] = cells[i] or None
            if i_notes is not None:
                values["notes"] = cells[i_notes]
            if i_code is not None:
                values["credit_code"] = "".join(cells[i_code].split()).upper() or None
                out.credit_code = values["credit_code"]
            out.external_id = values.get("external_id")
            if i_parent is not None:
                out.parent_ref = cells[i_parent] or None
            if i_industry is not None:
                raw = cells[i_industry]
                if raw:
                    industry = industries.get(raw) or industries.get(raw.lower())
                    if industry is None:
                        self.error(number, "industry", N_("Unknown industry."))
                    else:
                        values["industry_code"] = industry
                else:
                    values["industry_code"] = None
            if i_unit is not None:
                raw = cells[i_unit]
                if raw:
                    uid = self.unit_id(number, raw)
                    if uid is not None:
                        values["owning_unit_id"] = uid
                else:
                    values["owning_unit_id"] = MISSING
            if i_manager is not None:
                raw = cells[i_manager].lower()
                if raw and raw not in staff:
                    self.error(number, "account_manager", N_("No such active staff member."))
                else:
                    values["account_manager_id"] = staff.get(raw) if raw else None
            for name, i in flags:
                raw = cells[i]
                flag = parse_bool(raw) if raw else False
                if flag is None:
                    self.error(number, name, BAD_BOOL)
                else:
                    values[name] = flag
            if i_status is not None:
                raw = cells[i_status]
                status = STATUS_WORDS.get(raw.lower()) if raw else "active"
                if status is None:
                    self.error(
                        number,
                        "status",
                        N_("Must be active, dormant or lost (or 正常, 休眠, 流失)."),
                    )
                else:
                    values["status"] = status
            if len(errors) > before:
                out.bad = {e.field for e in errors[before:]}
            rows.append(out)
        return rows

    def match(self, rows: list[_CustomerRow]) -> None:
        """Find each row's existing customer by credit code or external id; refuse codes
        given twice in the file or owned by a customer out of view."""
        codes = {r.credit_code for r in rows if r.credit_code}
        exts = {r.external_id for r in rows if r.external_id}
        refs = {r.parent_ref for r in rows if r.parent_ref}
        codes |= {ref.upper() for ref in refs if len(ref) == 18}
        exts |= refs
        cols = [
            Customer.id,
            Customer.path,
            Customer.parent_id,
            *(getattr(Customer, f) for f in FIELDS),
            condition(Customer, self.viewer).label("visible"),
        ]
        self.by_code: dict[str, Any] = {}
        self.by_ext: dict[str, Any] = {}
        s = self.session
        known: dict[int, Any] = {}
        for where in matching(s, Customer.credit_code, codes):
            for rec in s.execute(select(*cols).where(where)):
                self.by_code[rec.credit_code] = known[rec.id] = rec
                if rec.external_id is not None:  # no need to read it a second time
                    self.by_ext[rec.external_id] = rec
        for where in matching(s, Customer.external_id, exts - set(self.by_ext)):
            for rec in s.execute(select(*cols).where(where)):
                self.by_ext[rec.external_id] = known[rec.id] = rec
        # Parents of customers we know, read off their paths (for the loop check).
        self.existing_parent: dict[Key, Key | None] = {}
        for rec in known.values():
            chain = [*tree.ancestor_ids(rec.path), rec.id]
            for i, node in enumerate(chain):
                self.existing_parent[("id", node)] = ("id", chain[i - 1]) if i else None

        self.file_code: dict[str, int] = {}
        self.file_ext: dict[str, int] = {}
        target_row: dict[int, int] = {}
        for i, row in enumerate(rows):
            row.key = ("new", i)
            by_code = self.by_code.get(row.credit_code) if row.credit_code else None
            by_ext = self.by_ext.get(row.external_id) if row.external_id else None
            for name, value, seen in (
                ("credit_code", row.credit_code, self.file_code),
                ("external_id", row.external_id, self.file_ext),
            ):
                if value is None:
                    continue
                if value in seen:
                    self.error(
                        row.number,
                        name,
                        N_("Row {row} of this file has the same code."),
                        row=rows[seen[value]].number,
                    )
                    row.bad.add(name)
                else:
                    seen[value] = i
            if by_code is not None and by_ext is not None and by_code.id != by_ext.id:
                self.error(
                    row.number,
                    "external_id",
                    N_("The credit code and the external id belong to different customers."),
                )
                row.bad.add("external_id")
                continue
            existing = by_code or by_ext
            if existing is None:
                continue
            if not existing.visible:
                name = "credit_code" if by_code is not None else "external_id"
                self.error(row.number, name, CODE_TAKEN)
                row.bad.add(name)
                continue
            if existing.id in target_row:
                self.error(
                    row.number,
                    "credit_code" if by_code is not None else "external_id",
                    N_("Row {row} of this file is the same customer."),
                    row=rows[target_row[existing.id]].number,
                )
                row.bad.add("credit_code" if by_code is not None else "external_id")
                continue
            target_row[existing.id] = i
            row.existing = existing
            row.key = ("id", existing.id)

    def validate(self, row: _CustomerRow) -> None:
        """The row (over the matched customer's values, for the columns the file lacks)
        through CustomerCreate, exactly as the API checks a new customer."""
        existing = row.existing
        merged: dict[str, Any] = {}
        if existing is not None:
            merged = {f: getattr(existing, f) for f in FIELDS if f not in row.values}
        for name, value in row.values.items():
            if value is not MISSING:
                merged[name] = value
        try:
            model = CustomerCreate.model_validate(merged)
        except ValidationError as exc:
            self.schema_errors(row.number, exc, row.bad)
            return
        clean = model.model_dump(exclude={"parent_id"})
        row.clean = clean
        if existing is not None:  # the values are plain str, int, bool or None
            row.field_changes = {f: clean[f] for f in FIELDS if getattr(existing, f) != clean[f]}

    def resolve_parents(self, rows: list[_CustomerRow]) -> None:
        for row in rows:
            if row.parent_ref is None:
                if self.has("parent") or row.existing is None:
                    row.parent = None
                else:
                    row.parent = self.existing_parent.get(row.key)
                continue
            ref = row.parent_ref
            j = self.file_code.get(ref.upper())
            if j is None:
                j = self.file_ext.get(ref)
            if j is not None:
                row.parent = rows[j].key
            else:
                rec = self.by_code.get(ref.upper()) or self.by_ext.get(ref)
                if rec is None or not rec.visible:
                    self.error(row.number, "parent", NO_SUCH_CUSTOMER)
                    row.parent = None
                    continue
                row.parent = ("id", rec.id)
            if row.parent == row.key:
                self.error(
                    row.number,
                    "parent",
                    N_("A customer cannot be a branch of itself or of its branches."),
                )
                row.parent = None

    def parent_of(self, key: Key) -> Key | None:
        if key in self.overrides:
            return self.overrides[key]
        return self.existing_parent.get(key)

    def find_cycles(self, rows: list[_CustomerRow]) -> None:
        """A parent column may hang customers of the file under each other: refuse loops."""
        self.overrides: dict[Key, Key | None] = {}
        row_of: dict[Key, _CustomerRow] = {}
        for row in rows:
            row_of[row.key] = row
            if self.has("parent") or row.existing is None:
                self.overrides[row.key] = row.parent
        state: dict[Key, int] = {}
        for row in rows:
            walk: list[Key] = []
            k: Key | None = row.key
            while k is not None and k not in state:
                state[k] = 1
                walk.append(k)
                k = self.parent_of(k)
            if k is not None and state[k] == 1:
                loop = walk[walk.index(k) :]
                members = sorted(row_of[m].number for m in loop if m in row_of)
                listed = ", ".join(str(n) for n in members)
                for m in loop:
                    if m in row_of:
                        self.error(
                            row_of[m].number,
                            "parent",
                            N_("These rows make a loop in the customer tree: {rows}."),
                            rows=listed,
                        )
            for w in walk:
                state[w] = 2

    # the outcome ------------------------------------------------------------------------

    def count(self, report: ImportReport) -> None:
        bad = {e.row for e in self.errors}
        for row in getattr(self, "rows", []):
            if row.number in bad:
                continue
            if row.existing is None:
                report.created += 1
                continue
            moved = row.parent != self.existing_parent.get(row.key)
            row.changed = bool(row.field_changes) or moved
            if row.changed:
                report.updated += 1
            else:
                report.unchanged += 1

    def write(self) -> None:
        s = self.session
        rows: list[_CustomerRow] = self.rows
        new_rows = [r for r in rows if r.existing is None]
        ids = allocate_ids(s, Customer, len(new_rows))
        self.ids: dict[Key, int] = {r.key: i for r, i in zip(new_rows, ids, strict=True)}
        self.path_memo: dict[Key, str] = {}
        total_steps = 4
        self.step(0, total_steps)

        # 1. New customers, parents first, with their final ids, paths and depths.
        records = []
        audit = []
        for row in new_rows:
            path = self.final_path(row.key)
            cid = self.ids[row.key]
            parent_id = self.id_of(row.parent) if row.parent is not None else None
            records.append(
                {
                    **row.clean,
                    "id": cid,
                    "parent_id": parent_id,
                    "path": path,
                    "depth": path.count("/") - 2,
                    "tier": None,
                    "service_level": None,
                    "tier_rule": None,
                    "tier_pinned": False,
                    "pin_reason": None,
                    "revenue_12m": Decimal("0"),
                    "created_at": self.at,
                    "updated_at": self.at,
                }
            )
            # diff({}, after) by hand: the validated values are plain already.
            after = {**row.clean, "parent_id": parent_id}
            created = {
                f: {"before": None, "after": after[f]}
                for f in CREATE_AUDIT_ORDER
                if after.get(f) is not None
            }
            audit.append(self.audit_row("customer.import_create", "customer", cid, created))
        records.sort(key=lambda r: r["depth"])
        bulk_insert(s, Customer.__table__, records)
        self.step(1, total_steps)

        # 2. Changed fields of matched customers.
        # Every field of a changed row is written (one shape for one set-based statement);
        # the audit rows name only the fields that changed.
        changes = [
            {"id": r.existing.id, **r.clean, "updated_at": self.at}
            for r in rows
            if r.existing is not None and r.field_changes
        ]
        bulk_update(s, Customer.__table__, changes)
        self.step(2, total_steps)

        # 3. Matched customers under a new parent move with their branches, top down.
        moves = [
            r
            for r in rows
            if r.existing is not None and r.parent != self.existing_parent.get(r.key)
        ]
        moves.sort(key=lambda r: self.final_path(r.key).count("/"))
        for row in moves:
            current = s.execute(
                select(Customer.id, Customer.path, Customer.depth).where(
                    Customer.id == row.existing.id
                )
            ).one()
            parent = None
            if row.parent is not None:
                parent_path = self.final_path(row.parent)
                parent = SimpleNamespace(
                    id=self.id_of(row.parent), path=parent_path, depth=parent_path.count("/") - 2
                )
            tree.move_subtree(s, Customer, current, parent)
        self.step(3, total_steps)

        # 4. One audit row per created or changed customer.
        for row in rows:
            if row.existing is None or not row.changed:
                continue
            before = {f: _plain(getattr(row.existing, f)) for f in AUDITED}
            after = {**before, **{f: _plain(v) for f, v in row.field_changes.items()}}
            after["parent_id"] = self.id_of(row.parent) if row.parent is not None else None
            audit.append(
                self.audit_row(
                    "customer.import_update", "customer", row.existing.id, diff(before, after)
                )
            )
        self.write_audit(audit)
        self.step(4, total_steps)

    def step(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress("write", done, total)

    def id_of(self, key: Key) -> int:
        return key[1] if key[0] == "id" else self.ids[key]

    def final_path(self, key: Key) -> str:
        """The path `key` has once the import is applied (its ancestors may move too)."""
        chain: list[Key] = []
        k: Key | None = key
        while k is not None and k not in self.path_memo:
            chain.append(k)
            k = self.parent_of(k)
        base = self.path_memo[k] if k is not None else None
        for node in reversed(chain):
            base = tree.child_path(base, self.id_of(node))
            self.path_memo[node] = base
        return self.path_memo[key]


# --- contacts -----------------------------------------------------------------------------


@dataclass
class _LinkedRow:
    number: int
    values: dict[str, Any]
    bad: set[str] = field(default_factory=set)
    customer: Any = None
    clean: dict[str, Any] = field(default_factory=dict)
    existing: Any = None
    field_changes: dict[str, Any] = field(default_factory=dict)


class _LinkedImport(_Import):
    """Rows that belong to a customer named by its credit code or external id."""

    required: tuple[str, ...] = ("customer",)
    schema: type[BaseModel] = BaseModel

    def check(self) -> None:
        refs = {self.cell(c, "customer") for _, c in self.table.rows if self.cell(c, "customer")}
        self.by_code, self.by_ext = self.visible_customers_by_code(refs)
        rows: list[_LinkedRow] = []
        total = len(self.table.rows)
        for n, (number, cells) in enumerate(self.table.rows, start=1):
            before = len(self.errors)
            row = _LinkedRow(number, {})
            ref = self.cell(cells, "customer")
            if not ref:
                self.error(number, "customer", N_("This field is required."))
            else:
                row.customer = self.find_customer(ref, self.by_code, self.by_ext)
                if row.customer is None:
                    self.error(number, "customer", NO_SUCH_CUSTOMER)
            self.parse(row, cells)
            row.bad = {e.field for e in self.errors[before:]}
            rows.append(row)
            self.tick("check", n, total)
        self.rows = rows
        self.match(rows)
        for row in rows:
            merged = {**self.base(row), **row.values}
            merged = {k: v for k, v in merged.items() if v is not MISSING}
            try:
                model = self.schema.model_validate(merged)
            except ValidationError as exc:
                self.schema_errors(row.number, exc, row.bad)
                continue
            row.clean = model.model_dump()
            if row.customer is not None:
                self.after_validate(row)

    def parse(self, row: _LinkedRow, cells: Sequence[str]) -> None:
        raise NotImplementedError

    def match(self, rows: list[_LinkedRow]) -> None:
        raise NotImplementedError

    def base(self, row: _LinkedRow) -> dict[str, Any]:
        return {}

    def after_validate(self, row: _LinkedRow) -> None:
        pass

    def count(self, report: ImportReport) -> None:
        bad = {e.row for e in self.errors}
        for row in getattr(self, "rows", []):
            if row.number in bad:
                continue
            if row.existing is None:
                report.created += 1
            elif row.field_changes:
                report.updated += 1
            else:
                report.unchanged += 1


class ContactImport(_LinkedImport):
    kind = "contacts"
    columns = CONTACT_COLUMNS
    required = ("customer", "name")
    schema = ContactCreate

    def parse(self, row: _LinkedRow, cells: Sequence[str]) -> None:
        v = row.values
        v["name"] = self.cell(cells, "name") or MISSING
        for name in ("title", "phone", "email"):
            if self.has(name):
                v[name] = self.cell(cells, name) or None
        if self.has("preferred_channel"):
            raw = self.cell(cells, "preferred_channel")
            v["preferred_channel"] = CHANNEL_WORDS.get(raw.lower(), raw) if raw else "phone"
        if self.has("locale"):
            raw = self.cell(cells, "locale")
            v["locale"] = LOCALE_WORDS.get(raw.lower(), raw) if raw else "zh_CN"
        for name in ("portal_access", "is_group_admin"):
            if self.has(name):
                self.flag(row.number, name, cells, v)

    def match(self, rows: list[_LinkedRow]) -> None:
        """A contact is the same when its customer has a contact of the same name."""
        ids = sorted({r.customer.id for r in rows if r.customer is not None})
        existing: dict[tuple[int, str], list[Any]] = {}
        cols = [Contact.id, Contact.customer_id, *(getattr(Contact, f) for f in CONTACT_AUDITED)]
        for where in matching(self.session, Contact.customer_id, ids):
            for rec in self.session.execute(select(*cols).where(where)):
                existing.setdefault((rec.customer_id, rec.name), []).append(rec)
        seen: dict[tuple[int, str], int] = {}
        for row in rows:
            name = row.values.get("name")
            if row.customer is None or not isinstance(name, str):
                continue
            key = (row.customer.id, name)
            if key in seen:
                self.error(
                    row.number,
                    "name",
                    N_("Row {row} of this file is the same contact."),
                    row=seen[key],
                )
                row.bad.add("name")
                continue
            seen[key] = row.number
            found = existing.get(key, [])
            if len(found) > 1:
                self.error(
                    row.number,
                    "name",
                    N_("This customer has several contacts of this name; edit them one by one."),
                )
                row.bad.add("name")
            elif found:
                row.existing = found[0]

    def base(self, row: _LinkedRow) -> dict[str, Any]:
        if row.existing is None:
            return {}
        return {f: getattr(row.existing, f) for f in CONTACT_AUDITED if f not in row.values}

    def after_validate(self, row: _LinkedRow) -> None:
        if row.clean.get("is_group_admin") and not row.customer.is_group:
            self.error(
                row.number,
                "is_group_admin",
                N_("Only a contact of a group customer can be its group administrator."),
            )
            return
        if row.existing is not None:
            row.field_changes = {
                f: row.clean[f]
                for f in CONTACT_AUDITED
                if _plain(getattr(row.existing, f)) != _plain(row.clean[f])
            }

    def write(self) -> None:
        s = self.session
        rows: list[_LinkedRow] = self.rows
        new_rows = [r for r in rows if r.existing is None]
        ids = allocate_ids(s, Contact, len(new_rows))
        records, audit = [], []
        for row, cid in zip(new_rows, ids, strict=True):
            records.append(
                {
                    "id": cid,
                    "customer_id": row.customer.id,
                    **row.clean,
                    "created_at": self.at,
                    "updated_at": self.at,
                }
            )
            after = {f: _plain(row.clean[f]) for f in CONTACT_AUDITED}
            audit.append(
                self.audit_row(
                    "contact.import_create",
                    "contact",
                    cid,
                    diff({}, after) | {"customer_id": {"before": None, "after": row.customer.id}},
                )
            )
        bulk_insert(s, Contact.__table__, records)
        changes = []
        for row in rows:
            if row.existing is None or not row.field_changes:
                continue
            changes.append({"id": row.existing.id, **row.clean, "updated_at": self.at})
            before = {f: _plain(getattr(row.existing, f)) for f in CONTACT_AUDITED}
            after = {**before, **{f: _plain(v) for f, v in row.field_changes.items()}}
            audit.append(
                self.audit_row(
                    "contact.import_update", "contact", row.existing.id, diff(before, after)
                )
            )
        bulk_update(s, Contact.__table__, changes)
        self.write_audit(audit)


# --- revenue ------------------------------------------------------------------------------

REVENUE_FIELDS = ("date", "amount", "currency", "business_line", "source_ref")


class RevenueImport(_LinkedImport):
    kind = "revenue"
    columns = REVENUE_COLUMNS
    required = ("customer", "date", "amount")
    schema = RevenueCreate

    def parse(self, row: _LinkedRow, cells: Sequence[str]) -> None:
        v = row.values
        raw = self.cell(cells, "date")
        v["date"] = import_format.normalise_date(raw) if raw else MISSING
        raw = self.cell(cells, "amount")
        v["amount"] = import_format.normalise_amount(raw) if raw else MISSING
        if self.has("currency"):
            raw = self.cell(cells, "currency").upper()
            v["currency"] = {"人民币": "CNY", "RMB": "CNY", "元": "CNY"}.get(raw, raw) or "CNY"
        if self.has("business_line"):
            v["business_line"] = self.cell(cells, "business_line")
        if self.has("source_ref"):
            v["source_ref"] = self.cell(cells, "source_ref") or None

    def match(self, rows: list[_LinkedRow]) -> None:
        """Same (customer, source_ref): an update. No source_ref: an identical record is
        the same record (so importing a file twice adds nothing)."""
        ids = sorted({r.customer.id for r in rows if r.customer is not None})
        self.by_ref: dict[tuple[int, str], Any] = {}
        self.identical: dict[tuple[Any, ...], Any] = {}
        cols = [
            RevenueRecord.id,
            RevenueRecord.customer_id,
            *(getattr(RevenueRecord, f) for f in REVENUE_FIELDS),
        ]
        for where in matching(self.session, RevenueRecord.customer_id, ids):
            for rec in self.session.execute(select(*cols).where(where)):
                if rec.source_ref is not None:
                    self.by_ref[(rec.customer_id, rec.source_ref)] = rec
                else:
                    same = (rec.customer_id, rec.date, rec.amount, rec.currency, rec.business_line)
                    self.identical.setdefault(same, rec)
        seen: dict[tuple[int, str], int] = {}
        for row in rows:
            ref = row.values.get("source_ref")
            if row.customer is None or not ref:
                continue
            key = (row.customer.id, ref)
            if key in seen:
                self.error(
                    row.number,
                    "source_ref",
                    N_("Row {row} of this file has the same code."),
                    row=seen[key],
                )
                row.bad.add("source_ref")
                continue
            seen[key] = row.number
            row.existing = self.by_ref.get(key)

    def after_validate(self, row: _LinkedRow) -> None:
        c = row.clean
        if row.existing is None and c.get("source_ref") is None:
            key = (row.customer.id, c["date"], c["amount"], c["currency"], c["business_line"])
            row.existing = self.identical.get(key)
        if row.existing is not None:
            row.field_changes = {
                f: c[f] for f in REVENUE_FIELDS if getattr(row.existing, f) != c[f]
            }

    def base(self, row: _LinkedRow) -> dict[str, Any]:
        if row.existing is None:
            return {}
        return {f: getattr(row.existing, f) for f in REVENUE_FIELDS if f not in row.values}

    def write(self) -> None:
        s = self.session
        rows: list[_LinkedRow] = self.rows
        new_rows = [r for r in rows if r.existing is None]
        ids = allocate_ids(s, RevenueRecord, len(new_rows))
        records, audit = [], []
        for row, rid in zip(new_rows, ids, strict=True):
            records.append(
                {"id": rid, "customer_id": row.customer.id, **row.clean, "created_at": self.at}
            )
            after = {
                "customer_id": row.customer.id,
                **{f: _plain(row.clean[f]) for f in REVENUE_FIELDS},
            }
            audit.append(
                self.audit_row("revenue.import_create", "revenue_record", rid, diff({}, after))
            )
        bulk_insert(s, RevenueRecord.__table__, records)
        changes = []
        for row in rows:
            if row.existing is None or not row.field_changes:
                continue
            changes.append({"id": row.existing.id, **row.clean})
            before = {f: _plain(getattr(row.existing, f)) for f in REVENUE_FIELDS}
            after = {**before, **{f: _plain(v) for f, v in row.field_changes.items()}}
            audit.append(
                self.audit_row(
                    "revenue.import_update", "revenue_record", row.existing.id, diff(before, after)
                )
            )
        bulk_update(s, RevenueRecord.__table__, changes)
        self.write_audit(audit)


__all__ = [
    "CHUNK",
    "KINDS",
    "ContactImport",
    "CustomerImport",
    "ImportReport",
    "RevenueImport",
    "RowError",
    "acting_viewer",
    "allocate_ids",
    "can_import",
    "import_file",
]
