"""Keeping the catalogue whole: extract every marked message, update the .po files.

Used by `make i18n` and by the test that fails on an untranslated message.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from kefu.i18n import LOCALE_DIR, LOCALES

SRC = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
# Jinja2's extractor by name, so only web/ imports Jinja2.
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]


def extract() -> Catalog:
    """Every message marked in the source and the templates."""
    catalog = Catalog(project="kefu")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SRC),
        METHODS,
        keywords=KEYWORDS,
        options_map={
            "**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
        },  # type: ignore[arg-type]
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, project="kefu")
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def update() -> dict[str, int]:
    """Merge new messages into every .po file; return how many lack a translation per locale."""
    template = extract()
    missing: dict[str, int] = {}
    for locale in LOCALES:
        catalog = load(locale)
        created = catalog.creation_date
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        # A stable header and no line numbers: parallel branches then touch only the entries
        # they add, so merges of the catalogue rarely conflict.
        catalog.creation_date = created
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(
                fh, catalog, width=100, omit_header=False, sort_output=True, include_lineno=False
            )
        missing[locale] = sum(1 for m in catalog if m.id and not m.string)
    return missing


if __name__ == "__main__":
    print(update())
