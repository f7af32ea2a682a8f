"""Reading one raw mail into what the intake needs — pure: no database, no network, no clock.

Mail in the wild is messy, so everything here is lenient where that loses nothing and strict
where leniency would hide a problem:
- headers: RFC 2047 encoded words in any charset, raw 8-bit headers (UTF-8 or GBK, as
  Chinese clients still send), unknown charsets (decoded as UTF-8 or GB18030, noted);
- bodies: text/plain is preferred; HTML is sanitised later by the tickets service (nh3);
  GB2312 and GBK are read as GB18030 (their superset: mails labelled GB2312 often hold GBK
  characters), Big5 as Big5-HKSCS;
- auto-replies and bounces are recognised (RFC 3834 Auto-Submitted, Precedence
  bulk/junk/list, DSN/MDN multipart/report, the null sender, MAILER-DAEMON), so they never
  make tickets or replies — no mail loops;
- a MIME tree that is broken, too deep or too wide, and an archive that unpacks to far more
  than it weighs (a zip bomb) are refused with a reason: the caller quarantines the mail.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import io
import mimetypes
import re
import zipfile
from dataclasses import dataclass, field
from email import errors as email_errors
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

MAX_DEPTH = 12
MAX_PARTS = 300
MAX_BODY_CHARS = 90_000
# A zip whose members unpack to more than this many times its size, beyond the floor, is a
# bomb; so is one with absurdly many members.
ZIP_RATIO = 100
ZIP_FLOOR = 50 * 1024 * 1024
ZIP_MAX_TOTAL = 1024 * 1024 * 1024
ZIP_MAX_MEMBERS = 10_000

# Reason codes stored on the intake log (kefu.mail.models.InboundMail.reason).
REASONS = (
    "too_large",
    "malformed",
    "zip_bomb",
    "no_sender",
    "auto_submitted",
    "precedence",
    "report",
    "null_sender",
    "mailer_daemon",
    "loop",
    "unknown_sender",
    "ambiguous_sender",
    "unauthenticated",
    "error",
)

CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "us-ascii": "utf-8",  # 8-bit text labelled ASCII is usually UTF-8
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "unicode-1-1-utf-7": "utf-7",
}
# Defects that mean the tree is not what it says it is (lost boundaries, broken nesting).
FATAL_DEFECTS = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
)
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
MSGID_RE = re.compile(r"<([^<>\s]{1,250})>")
LOOP_HEADER = "X-Kefu-Loop"  # set on every mail Kefu sends


class MailRefused(Exception):
    """The mail cannot be taken in as it is; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail[:500]
        super().__init__(f"{reason}: {detail}")


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass
class ParsedMail:
    message_key: str
    from_address: str | None
    from_name: str
    recipients: list[str]
    subject: str
    in_reply_to: list[str]
    references: list[str]
    auto: str | None  # a reason code when the mail is an auto-reply or a bounce
    body_html: str  # HTML to sanitise (converted from text/plain when there is one)
    body_text: str
    attachments: list[Attachment] = field(default_factory=list)
    unauthenticated: bool = False  # the receiving server said the sender failed DMARC
    notes: list[str] = field(default_factory=list)
    plain: bool = True  # the body came from text/plain (else from HTML)

    @property
    def reply_html(self) -> str:
        """The body without the quoted earlier mails a reply carries (they are on the
        ticket already); the whole body when nothing is recognised as a quote."""
        if self.plain:
            text, _cut = without_quote(self.body_text)
            return text_to_html(text)
        return html_without_quote(self.body_html)

    @property
    def thread_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            seen.setdefault(mid, None)
        return list(seen)


# --- text ---------------------------------------------------------------------------------


def codec_for(charset: str | None) -> str | None:
    """The Python codec to read `charset` with; None when the charset is unknown."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None, notes: list[str] | None = None) -> str:
    """Bytes in a declared (maybe wrong, maybe unknown) charset as text, never failing."""
    codec = codec_for(charset)
    if charset and codec is None and notes is not None:
        notes.append(f"unknown charset {charset[:40]!r}")
    tries = [c for c in (codec, "utf-8", "gb18030") if c]
    for c in dict.fromkeys(tries):
        try:
            return data.decode(c)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec or "utf-8", errors="replace")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", "")


def decode_header_value(raw: str | None, notes: list[str] | None = None) -> str:
    """A header's text: raw 8-bit bytes and RFC 2047 encoded words in any charset."""
    if not raw:
        return ""
    value = _unfold(str(raw))
    if any("\udc80" <= ch <= "\udcff" for ch in value):  # raw 8-bit bytes kept as surrogates
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None, notes)
    if "=?" not in value:
        return value.strip()
    try:
        parts = decode_header(value)
    except (email_errors.HeaderParseError, ValueError, AssertionError):
        return value.strip()
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset, notes))
    return "".join(out).strip()


QUOTE_STARTS = [
    re.compile(r"^\s*-{2,}\s*(original message|原始邮件|原始郵件|转发的邮件)\s*-{2,}", re.I),
    re.compile(r"^\s*on .{5,300} wrote:\s*$", re.I),
    re.compile(r"^\s*在\s?.{2,300}(写道|寫道)\s*[：:]\s*$"),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above the quoted header block
]
HEADER_BLOCK = re.compile(r"^\s*(from|发件人|寄件者|寄件人)\s*[:：]", re.I)
HEADER_NEXT = re.compile(r"^\s*(sent|date|to|subject|发送时间|日期|收件人|主题|時間)\s*[:：]", re.I)
HTML_QUOTES = re.compile(
    r"<(blockquote|div[^>]*(gmail_quote|divRplyFwdMsg|moz-cite-prefix|yahoo_quoted))", re.I
)


def without_quote(text: str) -> tuple[str, bool]:
    """A reply's own words: up to the first quoted earlier mail ("On … wrote:", "在…写道：",
    "-----Original Message-----", a From:/Sent: block) or a trailing run of "> " lines."""
    lines = text.split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if any(p.match(line) for p in QUOTE_STARTS) or (
            HEADER_BLOCK.match(line) and any(HEADER_NEXT.match(n) for n in lines[i + 1 : i + 4])
        ):
            cut = i
            break
    while cut > 0 and (lines[cut - 1].startswith(">") or not lines[cut - 1].strip()):
        cut -= 1
    own = "\n".join(lines[:cut]).strip()
    return (own, True) if own and cut < len(lines) else (text, False)


def html_without_quote(body: str) -> str:
    m = HTML_QUOTES.search(body)
    if m is None or not body[: m.start()].strip():
        return body
    return body[: m.start()]


def _raw_header(msg: Message, name: str) -> str | None:
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return str(value)
    return None


def _msgids(value: str | None) -> list[str]:
    return [m.strip() for m in MSGID_RE.findall(value or "")][:50]


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (escaped), keeping its line breaks."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "".join(
        "<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs if p.strip()
    )


# --- structure ----------------------------------------------------------------------------


def header_key(raw: bytes) -> tuple[str, str | None]:
    """The mail's identity from its headers alone: (message_key, Message-ID or None).

    A mail without a Message-ID is known by the hash of its bytes, so a re-fetch of it still
    makes nothing new."""
    try:
        head = BytesHeaderParser(policy=compat32).parsebytes(raw[: 256 * 1024])
        ids = _msgids(_raw_header(head, "Message-ID"))
    except Exception:
        ids = []
    if ids:
        return ids[0][:300], ids[0]
    return "sha256:" + hashlib.sha256(raw).hexdigest(), None


def _walk(msg: Message, depth: int, counter: list[int]) -> None:
    counter[0] += 1
    if counter[0] > MAX_PARTS:
        raise MailRefused("malformed", f"more than {MAX_PARTS} MIME parts")
    if depth > MAX_DEPTH:
        raise MailRefused("malformed", f"MIME parts nested deeper than {MAX_DEPTH}")
    for defect in msg.defects:
        if isinstance(defect, FATAL_DEFECTS):
            raise MailRefused("malformed", type(defect).__name__)
    if msg.is_multipart():
        payload = msg.get_payload()
        if not isinstance(payload, list) or not payload:
            raise MailRefused("malformed", "a multipart part without parts")
        for sub in payload:
            if not isinstance(sub, Message):
                raise MailRefused("malformed", "a multipart part that is not a part")
            _walk(sub, depth + 1, counter)


def _check_zip(name: str, data: bytes, depth: int = 0) -> None:
    """Refuse an archive that unpacks to far more than it weighs, here or in the archives
    it holds (a zip in a zip is how bombs hide their ratio)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a readable zip: the attachment check refuses or keeps it
    if len(infos) > ZIP_MAX_MEMBERS:
        raise MailRefused("zip_bomb", f"{name}: {len(infos)} members")
    total = sum(max(i.file_size, 0) for i in infos)
    if total > ZIP_MAX_TOTAL or (total > ZIP_FLOOR and total > ZIP_RATIO * max(len(data), 1)):
        raise MailRefused("zip_bomb", f"{name}: {len(data)} bytes unpack to {total}")
    for info in infos:
        if not info.filename.lower().endswith(".zip") or info.file_size == 0:
            continue
        if depth >= 2 or info.file_size > ZIP_FLOOR:
            raise MailRefused("zip_bomb", f"{name}: archives nested in {info.filename}")
        try:
            inner = archive.read(info)
        except (zipfile.BadZipFile, ValueError, OSError, RuntimeError, NotImplementedError):
            continue
        _check_zip(f"{name}/{info.filename}", inner, depth + 1)
        if info.compress_size and info.file_size > ZIP_RATIO * info.compress_size:
            raise MailRefused("zip_bomb", f"{name}: nested {info.filename}")


# --- the parse ----------------------------------------------------------------------------


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    if part.get_filename():
        return True
    return part.get_content_maintype() not in ("text", "multipart", "message")


def _auto_reason(msg: Message, sender: str | None) -> str | None:
    auto = (_raw_header(msg, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    if (_raw_header(msg, "Precedence") or "").strip().lower() in AUTO_PRECEDENCE:
        return "precedence"
    if msg.get_content_type() == "multipart/report":
        return "report"
    if _raw_header(msg, "X-Autoreply") or _raw_header(msg, "X-Autorespond"):
        return "auto_submitted"
    return_path = _raw_header(msg, "Return-Path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "null_sender"
    if sender and sender.split("@")[0] in DAEMONS:
        return "mailer_daemon"
    if _raw_header(msg, LOOP_HEADER):
        return "loop"
    return None


def _unauthenticated(msg: Message) -> bool:
    """The receiving server's verdict (RFC 8601): the topmost Authentication-Results, which
    our own server adds above anything the sender wrote, says DMARC failed."""
    verdict = (_raw_header(msg, "Authentication-Results") or "").lower()
    return bool(re.search(r"\bdmarc=fail\b", verdict))


def _address(value: str) -> str | None:
    _name, addr = parseaddr(value)
    addr = addr.strip().lower()
    if not addr or "@" not in addr or any(c in addr for c in "\r\n \t<>\"'"):
        return None
    local, _, domain = addr.rpartition("@")
    if not local or "." not in domain:
        return None
    return addr[:254]


def parse(raw: bytes, message_key: str | None = None) -> ParsedMail:
    """Read a raw mail; raises MailRefused for one to quarantine. `message_key`: the
    caller's header_key(raw), when it has it already."""
    message_key = message_key or header_key(raw)[0]
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
    except Exception as exc:
        raise MailRefused("malformed", f"unreadable: {type(exc).__name__}") from exc
    _walk(msg, 0, [0])
    notes: list[str] = []

    from_raw = decode_header_value(_raw_header(msg, "From"), notes)
    from_name, _ = parseaddr(from_raw)
    sender = _address(from_raw)
    recipients = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        value = decode_header_value(_raw_header(msg, name), notes)
        for _n, addr in getaddresses([value]):
            if "@" in addr:
                recipients.append(addr.strip().lower())
    subject = decode_header_value(_raw_header(msg, "Subject"), notes)

    plain: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822" or ctype.startswith("message/"):
            continue
        if _is_attachment(part) or ctype not in ("text/plain", "text/html"):
            data = part.get_payload(decode=True)
            if not isinstance(data, bytes) or not data:
                continue
            filename = decode_header_value(part.get_filename() or "", notes)
            content_id = (part.get("Content-ID") or "").strip().strip("<>") or None
            if not filename:
                ext = mimetypes.guess_extension(ctype) or ".bin"
                filename = f"{(content_id or 'inline').split('@')[0][:40]}{ext}"
            if data.startswith(b"PK\x03\x04"):
                _check_zip(filename, data)
            disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
            attachments.append(
                Attachment(
                    filename=filename,
                    content_type=ctype,
                    data=data,
                    content_id=content_id,
                    inline=disposition != "attachment" and content_id is not None,
                )
            )
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = decode_bytes(payload, part.get_content_charset(), notes)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        (plain if ctype == "text/plain" else htmls).append(text)

    body_text = "\n\n".join(t.strip() for t in plain if t.strip())
    if body_text:
        body_html = text_to_html(body_text[:MAX_BODY_CHARS])
    else:
        body_html = "\n".join(htmls)[:MAX_BODY_CHARS]
        body_text = re.sub(r"<[^>]*>", " ", body_html)

    return ParsedMail(
        message_key=message_key,
        from_address=sender,
        from_name=from_name.strip()[:100],
        recipients=recipients[:100],
        subject=subject,
        in_reply_to=_msgids(_raw_header(msg, "In-Reply-To")),
        references=_msgids(_raw_header(msg, "References")),
        auto=_auto_reason(msg, sender),
        body_html=body_html,
        body_text=body_text[:MAX_BODY_CHARS],
        plain=bool(plain and any(t.strip() for t in plain)),
        attachments=attachments,
        unauthenticated=_unauthenticated(msg),
        notes=list(dict.fromkeys(notes)),
    )
