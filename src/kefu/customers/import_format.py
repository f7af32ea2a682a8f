"""Reading an import file into rows of text: pure functions, no database, no clock.

A file is accepted when it is
- an Excel workbook (.xlsx, recognised by its zip signature, whatever its name), or
- a CSV text in UTF-8 (with or without BOM) or GBK/GB18030, separated by commas (or tabs,
  or semicolons when the header row has no comma).
Anything else (UTF-16, a legacy .xls, a PDF, random bytes, an empty or oversized file) is
refused with an `ImportFileError` whose message is a catalogue msgid.

The first non-empty row is the header; each later row keeps its spreadsheet row number
(the header being row 1 when it is the first line), so every error can name the row a
person sees when they open the file.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from kefu.i18n import N_

# Larger files are refused before anything is parsed (change with care: the whole file is
# held in memory while it is read).
MAX_BYTES = 50 * 1024 * 1024
# Data rows per file (a 50 MB CSV of customers holds about 300,000).
MAX_ROWS = 500_000

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


class ImportFileError(Exception):
    """The file as a whole cannot be read; `message` is a catalogue msgid."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message)


@dataclass
class Table:
    """The header row and the data rows of a file, every cell as stripped text."""

    format: str  # "csv" or "xlsx"
    encoding: str | None  # of a CSV: "utf-8" or "gb18030"
    header_row: int
    headers: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


# --- reading ----------------------------------------------------------------------------------


def read_table(data: bytes, filename: str | None = None) -> Table:
    """The rows of `data`, or ImportFileError when the file is empty, too large or unreadable.

    The format is decided by the content; `filename` only sharpens the error message.
    """
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            N_("The file is larger than the limit of {limit}."), limit=_size(MAX_BYTES)
        )
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise ImportFileError(N_("The file is empty."))
    if data.startswith(XLSX_MAGIC):
        rows = _xlsx_rows(data)
        fmt, encoding = "xlsx", None
    elif data.startswith(OLE_MAGIC):
        raise ImportFileError(
            N_("Old Excel (.xls) files cannot be read: save the sheet as .xlsx or as CSV.")
        )
    else:
        if (filename or "").lower().endswith((".xlsx", ".xlsm")):
            raise ImportFileError(N_("The file is named .xlsx but is not an Excel workbook."))
        text, encoding = decode_text(data)
        rows = _csv_rows(text)
        fmt = "csv"
    return _table(rows, fmt, encoding)


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    if n >= 1024:
        return f"{n / 1024:g} KB"
    return f"{n} B"


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV file: UTF-8 (BOM or not), else GB18030 (a superset of GBK)."""
    if data.startswith(UTF32_BOMS) or data.startswith(UTF16_BOMS) or _utf16_without_bom(data):
        raise ImportFileError(
            N_("The file is encoded in UTF-16 or UTF-32; save it as CSV in UTF-8 or GBK.")
        )
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            break
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise ImportFileError(
        N_(
            "The file is neither an Excel workbook (.xlsx) nor a CSV text in UTF-8 or GBK; "
            "save it as one of these."
        )
    )


def _utf16_without_bom(data: bytes) -> bool:
    """Mostly-ASCII UTF-16 text: a NUL in every other byte, on one side only."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 2:
        return False
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    return max(even, odd) > 0.4 * half and min(even, odd) < 0.05 * half


def _looks_binary(text: str) -> bool:
    """Control characters (other than tab and line ends) or NULs mean a binary file."""
    sample = text[:65536]
    if "\x00" in sample:
        return True
    controls = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\t\r\n")
    private = sum(1 for c in sample if unicodedata.category(c) in ("Co", "Cn"))
    return controls + private > max(2, len(sample) // 200)


def _csv_rows(text: str) -> Iterator[list[str]]:
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first_line:
        if "\t" in first_line:
            delimiter = "\t"
        elif ";" in first_line:
            delimiter = ";"
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    except csv.Error as exc:
        raise ImportFileError(N_("The CSV text is malformed: {error}."), error=str(exc)) from exc


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    import openpyxl  # imported here: only Excel files need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(
            N_("The file is a zip archive but not a readable Excel workbook (.xlsx).")
        ) from exc
    try:
        if not book.worksheets:
            raise ImportFileError(N_("The file is empty."))
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [cell_text(v) for v in values]
    except ImportFileError:
        raise
    except Exception as exc:  # a damaged sheet inside a valid zip
        raise ImportFileError(
            N_("The file is a zip archive but not a readable Excel workbook (.xlsx).")
        ) from exc
    finally:
        book.close()


def cell_text(value: Any) -> str:
    """An Excel cell as the text a person sees (numbers without a trailing .0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _table(rows: Iterator[list[str]], fmt: str, encoding: str | None) -> Table:
    table: Table | None = None
    for number, raw in enumerate(rows, start=1):
        cells = [c.strip() for c in raw]
        if not any(cells):
            continue
        if table is None:
            table = Table(format=fmt, encoding=encoding, header_row=number, headers=cells)
            continue
        if len(table.rows) >= MAX_ROWS:
            raise ImportFileError(N_("The file has more than {n} rows."), n=MAX_ROWS)
        table.rows.append((number, cells))
    if table is None:
        raise ImportFileError(N_("The file is empty."))
    if not table.rows:
        raise ImportFileError(N_("The file has a header row but no data rows."))
    return table


# --- headers ----------------------------------------------------------------------------------


def header_key(text: str) -> str:
    """A header reduced for matching: no notes in brackets, no spaces, '*' or case."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[(\[【].*?[)\]】]", "", text)
    return re.sub(r"[\s*_\-:：]", "", text).lower()


def match_headers(
    headers: Sequence[str], aliases: Mapping[str, Sequence[str]], ignored: Sequence[str] = ()
) -> tuple[dict[str, int], list[tuple[int, str]], list[tuple[int, str, str]]]:
    """Map each header to a field by its aliases.

    Returns ({field: column index}, [(index, header) not known], [(index, header, field)
    given twice]).
    """
    lookup: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in (name, *names):
            lookup[header_key(alias)] = name
    skip = {header_key(h) for h in ignored}
    columns: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    twice: list[tuple[int, str, str]] = []
    for index, header in enumerate(headers):
        key = header_key(header)
        if not key or key in skip:
            continue
        found = lookup.get(key)
        if found is None:
            unknown.append((index, header))
        elif found in columns:
            twice.append((index, header, found))
        else:
            columns[found] = index
    return columns, unknown, twice


# --- cell values ------------------------------------------------------------------------------

TRUE_WORDS = frozenset({"是", "y", "yes", "true", "t", "1", "✓", "√", "对"})
FALSE_WORDS = frozenset({"否", "n", "no", "false", "f", "0", "×", "x", "不是"})


def parse_bool(text: str) -> bool | None:
    """是/否, yes/no, true/false, 1/0 (None when it is none of these)."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def normalise_date(text: str) -> str:
    """2026-01-05, 2026/1/5, 2026.1.5, 2026年1月5日 or 20260105 as ISO text (else as given)."""
    m = DATE_RE.match(text.strip()) or COMPACT_DATE_RE.match(text.strip())
    if not m:
        return text
    year, month, day = m.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


AMOUNT_JUNK_RE = re.compile(r"[,，\s¥￥元]|^CNY|^RMB", re.IGNORECASE)


def normalise_amount(text: str) -> str:
    """'¥1,200.50' → '1200.50' (thousands separators, currency signs and spaces dropped)."""
    return AMOUNT_JUNK_RE.sub("", text.strip())
