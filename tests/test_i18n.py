"""Every message in the source is in the catalogue, translated into Chinese."""

from __future__ import annotations

import pytest

from kefu import i18n
from kefu.i18n import catalogue


@pytest.fixture(scope="module")
def extracted():
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue.extract() if m.id}


def test_catalogue_has_messages(extracted):
    assert "Wrong username or password." in extracted
    assert len(extracted) > 50


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_message_is_in_each_catalogue(extracted, locale):
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue.load(locale) if m.id}
    missing = sorted(extracted - known)
    assert missing == [], f"run `make i18n`, then translate: {missing}"


def test_every_message_is_translated_into_chinese(extracted):
    untranslated = [
        m.id
        for m in catalogue.load("zh_CN")
        if m.id
        and (m.id if isinstance(m.id, str) else m.id[0]) in extracted
        and (not m.string or "fuzzy" in m.flags)
    ]
    assert untranslated == []


def test_placeholders_survive_translation():
    import re

    for m in catalogue.load("zh_CN"):
        if m.id and isinstance(m.id, str) and m.string:
            assert set(re.findall(r"{\w+}", m.id)) == set(re.findall(r"{\w+}", m.string)), m.id


def test_locale_negotiation():
    assert i18n.from_accept_language("en-US,en;q=0.9,zh;q=0.8") == "en"
    assert i18n.from_accept_language("zh-TW;q=0.5, en;q=0.4") == "zh_CN"
    assert i18n.from_accept_language("fr, de") is None
    assert i18n.from_accept_language("en;q=0, zh") == "zh_CN"


def test_formatting_per_locale():
    from datetime import UTC, datetime
    from decimal import Decimal

    moment = datetime(2026, 10, 1, 1, 30, tzinfo=UTC)
    i18n.set_locale("zh_CN")
    assert i18n.format_money(Decimal("1234567.5")) == "¥1,234,567.50"
    assert "2026年10月1日" in i18n.format_datetime(moment)
    assert "09:30" in i18n.format_datetime(moment)  # shown in Asia/Shanghai
    i18n.set_locale("en")
    assert i18n.format_money(Decimal("1234567.5")) == "CN¥1,234,567.50"
    assert "Oct 1, 2026" in i18n.format_datetime(moment)
    assert i18n.format_number(1234567) == "1,234,567"


def _bare_text(source: str) -> list[str]:
    """Human words in a template outside {{ _() }}: Jinja blocks, tags and entities removed."""
    import re

    text = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", "\u00a7", source, flags=re.S)
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text, flags=re.S)  # tags, with their attributes
    text = re.sub(r"&[#\w]+;", " ", text)
    return re.findall(r"[A-Za-z]{2,}|[\u4e00-\u9fff]+", text)


def test_templates_hold_no_untranslated_text():
    from pathlib import Path

    allowed = {"Kefu", "客服", "客"}  # the product's name and its logo mark
    templates = Path(catalogue.SRC) / "web" / "templates"
    problems = {}
    for path in templates.rglob("*.html"):
        words = [w for w in _bare_text(path.read_text()) if w not in allowed]
        if words:
            problems[path.name] = words
    assert problems == {}
