from __future__ import annotations

import io
import zipfile

import pytest

from kefu.tickets.filetypes import matches, sniff


def office(folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(f"{folder}document.xml", "<x/>")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"\xff\xd8\xff\xe0JFIF", "jpeg"),
        (b"GIF89a....", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        ("故障报告：专线中断\n".encode(), "text"),
        ("故障报告：专线中断\n".encode("gbk"), "text"),
        (office("word/"), "docx"),
        (office("xl/"), "xlsx"),
        (b"\x00\x01\x02binary", None),
        (b"MZ\x90\x00\x03\x00\x00\x00", None),  # a Windows program
    ],
)
def test_sniff(data, kind):
    assert sniff(data[:512], data) == kind


def test_a_file_that_lies_about_its_type():
    assert matches("pdf", "report.PDF")
    assert not matches("text", "invoice.pdf")  # text pretending to be a PDF
    assert not matches("zip", "photo.jpg")
