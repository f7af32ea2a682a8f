"""What a file really is, from its first bytes — never from its name or the browser's word.

An attachment whose content does not match its name's extension is refused ("lies about its
type"), and only the kinds listed in the settings are accepted at all.
"""

from __future__ import annotations

import io
import zipfile

# kind → (content type, extensions)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("application/pdf", ("pdf",)),
    "png": ("image/png", ("png",)),
    "jpeg": ("image/jpeg", ("jpg", "jpeg")),
    "gif": ("image/gif", ("gif",)),
    "webp": ("image/webp", ("webp",)),
    "text": ("text/plain; charset=utf-8", ("txt", "log", "csv")),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",)),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ("pptx",),
    ),
    "zip": ("application/zip", ("zip",)),
}
OFFICE_DIRS = {"docx": "word/", "xlsx": "xl/", "pptx": "ppt/"}


def sniff(head: bytes, data: bytes | None = None) -> str | None:
    """The kind of a file from its content (None: unknown or binary junk)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(data or head)
    if b"\x00" not in head:
        for encoding in ("utf-8", "gb18030"):
            try:
                head.decode(encoding)
                return "text"
            except UnicodeDecodeError as exc:
                if exc.start >= len(head) - 4:  # a character cut at the end of the sample
                    return "text"
    return None


def _zip_kind(data: bytes) -> str | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" in names:
        for kind, folder in OFFICE_DIRS.items():
            if any(n.startswith(folder) for n in names):
                return kind
    return "zip"


def extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def matches(kind: str, filename: str) -> bool:
    return extension(filename) in KINDS[kind][1]
