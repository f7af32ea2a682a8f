"""Mails as clients send them, for the tests and the benchmark."""

from __future__ import annotations

import base64
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr


def new_id(domain: str = "client.example.cn") -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def mail(
    frm: str,
    subject: str,
    body: str = "你好，设备出现故障。",
    *,
    to: str = "support@kefu.example.cn",
    msgid: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    inline: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    """A well-formed mail (UTF-8, RFC 2047 headers as a modern client writes them)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{msgid or new_id()}>"
    msg["Date"] = "Thu, 26 Nov 2026 09:00:00 +0800"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for cid, ctype, data in inline or []:
        maintype, subtype = ctype.split("/")
        target = msg.get_payload()[-1] if msg.is_multipart() else msg
        target.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>")
    for filename, ctype, data in attachments or []:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def legacy(frm: str, subject: bytes, body: bytes, charset: str, msgid: str | None = None) -> bytes:
    """A mail as old clients send it: raw 8-bit headers and a body in a legacy charset."""
    return (
        b"From: " + frm.encode() + b"\r\n"
        b"To: support@kefu.example.cn\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Message-ID: <" + (msgid or new_id()).encode() + b">\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )


def encoded_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def named(name: str, address: str) -> str:
    return formataddr((name, address))
