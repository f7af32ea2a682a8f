"""The pure parts of email in: reading mails, recognising auto-replies, signed threads."""

from __future__ import annotations

import io
import zipfile

import pytest

from kefu.mail import parse, threads
from tests.mail.builders import mail as build


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nhello\r\n"
    for i in range(depth):
        b = f"b{i}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + b
            + b"\r\n\r\n--"
            + b
            + b"\r\n"
            + body
            + b"--"
            + b
            + b"--\r\n"
        )
    return b"From: a@example.cn\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + body


def test_deep_or_wide_trees_are_malformed():
    assert parse.parse(_nested(3)).body_text == "hello"
    with pytest.raises(parse.MailRefused) as deep:
        parse.parse(_nested(parse.MAX_DEPTH + 2))
    assert deep.value.reason == "malformed"
    many = build(
        "a@example.cn",
        "wide",
        attachments=[(f"{i}.txt", "text/plain", b"x") for i in range(parse.MAX_PARTS + 1)],
    )
    with pytest.raises(parse.MailRefused, match="parts"):
        parse.parse(many)


def test_a_zip_in_a_zip_bomb_is_refused_and_an_honest_zip_is_not():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros", b"\x00" * 60_000_000)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inner.zip", inner.getvalue())
    honest = io.BytesIO()
    with zipfile.ZipFile(honest, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "说明" * 100)
    ok = parse.parse(
        build("a@example.cn", "zip", attachments=[("a.zip", "application/zip", honest.getvalue())])
    )
    assert ok.attachments[0].filename == "a.zip"
    # The nested one hides its ratio (stored outer, deflated inner) — caught one level down.
    with pytest.raises(parse.MailRefused) as bomb:
        parse.parse(
            build(
                "a@example.cn", "zip", attachments=[("b.zip", "application/zip", outer.getvalue())]
            )
        )
    assert bomb.value.reason == "zip_bomb"


def test_auto_reply_signals():
    def reason(**headers: str) -> str | None:
        return parse.parse(build("a@example.cn", "s", headers=headers)).auto

    assert reason() is None
    assert reason(**{"Auto-Submitted": "no"}) is None
    assert reason(**{"Auto-Submitted": "auto-generated"}) == "auto_submitted"
    assert reason(Precedence="junk") == "precedence"
    assert reason(**{"X-Kefu-Loop": "1"}) == "loop"
    daemon = parse.parse(build("MAILER-DAEMON@mx.example.cn", "failure notice"))
    assert daemon.auto == "mailer_daemon"


def test_headers_and_addresses_that_lie():
    raw = (
        b"From: =?utf-8?B?5byg5LiJ?= <a@example.cn>, b@example.cn\r\n"
        b"Subject: =?gb2312?Q?=B1=A8=D0=DE?= =?utf-8?B?5pWF6Zqc?=\r\n\r\nx"
    )
    got = parse.parse(raw)
    assert got.subject == "报修故障"  # adjacent encoded words join without a space
    assert got.from_address == "a@example.cn"
    assert parse.parse(b"From: not an address\r\nSubject: x\r\n\r\nx").from_address is None
    assert parse.parse(b"Subject: x\r\n\r\nx").from_address is None
    assert parse.header_key(b"Subject: x\r\n\r\nbody")[0].startswith("sha256:")


def test_signed_message_ids_and_ticket_numbers(settings):
    mid = threads.message_id(42, "kefu.example.cn")
    assert threads.ticket_of_message_id(mid) == 42
    forged = mid.replace("kefu.42.", "kefu.43.")
    assert threads.ticket_of_message_id(forged) is None
    assert threads.ticket_of_message_id("random@elsewhere") is None
    assert threads.number_in_subject("回复: [T2026-0000042] 报修") == (2026, 42)
    assert threads.number_in_subject("no number") is None
    plus = threads.reply_address("support+old@kefu.example.cn", 42)
    assert plus.startswith("support+t42-") and threads.ticket_of_recipients([plus]) == 42


def test_replies_lose_the_quoted_history():
    zh = (
        "好的，已经解决了。\n\n"
        "在 2026年11月26日 09:00，客服 <kf@kefu.example.cn> 写道：\n> 请重启设备\n"
    )
    assert parse.without_quote(zh) == ("好的，已经解决了。", True)
    en = "Works now.\n\nOn Thu, 26 Nov 2026 at 09:00, Kefu <kf@kefu.example.cn> wrote:\n> restart\n"
    assert parse.without_quote(en)[0] == "Works now."
    outlook = (
        "Thanks\n\n________________________________\nFrom: Kefu\nSent: Thursday\nTo: me\n\nold"
    )
    assert parse.without_quote(outlook)[0] == "Thanks"
    cn_outlook = "收到\n\n发件人: 客服\n发送时间: 2026年11月26日\n收件人: 我\n主题: 报修\n旧内容"
    assert parse.without_quote(cn_outlook)[0] == "收到"
    trailing = "ok\n> quoted\n> more"
    assert parse.without_quote(trailing)[0] == "ok"
    # Nothing but a quote, or no quote at all: the whole text stays.
    assert parse.without_quote("> all quoted")[0] == "> all quoted"
    assert parse.without_quote("From: the facts below\nplain text") == (
        "From: the facts below\nplain text",
        False,
    )
    html = '<p>Fine now</p><div class="gmail_quote">On … wrote: <blockquote>old</blockquote></div>'
    assert parse.html_without_quote(html) == "<p>Fine now</p>"
    got = parse.parse(build("a@example.cn", "Re: x", zh))
    assert got.reply_html == "<p>好的，已经解决了。</p>"
