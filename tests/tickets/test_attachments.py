from __future__ import annotations

from sqlalchemy import select

from kefu.tickets.models import TicketAttachment
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"


def new_ticket(client, h, customer_id):
    r = client.post(
        "/api/v1/tickets",
        headers=h,
        json={"customer_id": customer_id, "category_code": "fault_repair", "subject": "附件测试"},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_upload_download_and_refusals(client, db, settings):
    settings.attachment_max_mb = 0.001  # about 1 KB, so "too large" needs no big file
    unit = make_unit(db)
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    tid = new_ticket(client, h, make_customer(db, unit).id)
    r = client.post(
        f"/api/v1/tickets/{tid}/attachments",
        headers=h,
        files={"file": ("../../故障报告.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "故障报告.pdf" and att["kind"] == "pdf"
    got = client.get(f"/api/v1/tickets/{tid}/attachments/{att['id']}", headers=h)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "attachment" in got.headers["content-disposition"]
    bad = [
        (("evil.pdf", b"MZ\x90\x00 a program", "application/pdf"), "not accepted"),
        (("photo.jpg", PDF, "image/jpeg"), "does not match"),
        (("empty.txt", b"", "text/plain"), "empty"),
        (("big.txt", b"x" * 2000, "text/plain"), "larger"),
    ]
    for upload, words in bad:
        r = client.post(
            f"/api/v1/tickets/{tid}/attachments",
            headers={**h, "Accept-Language": "en"},
            files={"file": upload},
        )
        assert r.status_code == 422, upload[0]
        assert r.json()["errors"][0]["field"] == "file"
        assert words in r.json()["errors"][0]["message"]
    assert len(db.scalars(select(TicketAttachment)).all()) == 1
    listed = client.get(f"/api/v1/tickets/{tid}/attachments", headers=h).json()
    assert [a["filename"] for a in listed] == ["故障报告.pdf"]


def test_attachments_follow_the_tickets_scope(client, db):
    org = build_org(db)
    customer = make_customer(db, org.county_y)
    db.commit()
    tid = new_ticket(client, org.headers["admin"], customer.id)
    att = client.post(
        f"/api/v1/tickets/{tid}/attachments",
        headers=org.headers["admin"],
        files={"file": ("a.pdf", PDF, "application/pdf")},
    ).json()
    x = org.headers["county_x"]
    assert (
        client.get(f"/api/v1/tickets/{tid}/attachments/{att['id']}", headers=x).status_code == 404
    )
    assert client.get(f"/api/v1/tickets/{tid}/attachments", headers=x).status_code == 404
    assert (
        client.post(
            f"/api/v1/tickets/{tid}/attachments",
            headers=x,
            files={"file": ("b.pdf", PDF, "application/pdf")},
        ).status_code
        == 404
    )
    city = org.headers["city_a"]
    assert (
        client.get(f"/api/v1/tickets/{tid}/attachments/{att['id']}", headers=city).status_code
        == 200
    )
