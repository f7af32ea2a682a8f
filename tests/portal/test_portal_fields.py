"""Custom fields on the portal's new-request form: the chosen category's fields are shown
(never required of a customer), what the contact gives is checked with the error beside the
input, and nothing is written when any value is bad."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kefu import clock
from kefu.scope import SYSTEM
from kefu.tickets import fields
from kefu.tickets.models import Ticket, TicketAttachment, TicketFieldValue
from kefu.tickets.schemas import ChoiceIn, TicketFieldCreate
from tests.contact_matrix import build_customers, portal_login, portal_post

NOW = datetime(2026, 11, 24, 2, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def tuesday():
    clock.set_now(lambda: NOW)


def define_fields(db) -> None:  # type: ignore[no-untyped-def]
    """fault_repair asks a required line id, a number and a choice; installation a date."""
    for spec in (
        TicketFieldCreate(
            key="line_id",
            label_zh="线路编号",
            label_en="Line ID",
            type="text",
            category_code="fault_repair",
            required=True,
            position=1,
        ),
        TicketFieldCreate(
            key="loss_db",
            label_zh="衰耗",
            label_en="Loss (dB)",
            type="number",
            category_code="fault_repair",
            position=2,
        ),
        TicketFieldCreate(
            key="fibre_kind",
            label_zh="光纤类型",
            label_en="Fibre kind",
            type="choice",
            category_code="fault_repair",
            position=3,
            choices=[
                ChoiceIn(value="sm", label_zh="单模", label_en="Single-mode"),
                ChoiceIn(value="mm", label_zh="多模", label_en="Multi-mode"),
            ],
        ),
        TicketFieldCreate(
            key="install_on",
            label_zh="希望安装日期",
            label_en="Install on",
            type="date",
            category_code="installation",
            position=1,
        ),
    ):
        fields.create_definition(db, SYSTEM, spec)  # type: ignore[arg-type]
    db.commit()


def signed_in(app, db, key: str = "stranger"):  # type: ignore[no-untyped-def]
    cs = build_customers(db)
    define_fields(db)
    client = TestClient(app)
    assert portal_login(client, cs.logins[key]).status_code == 303
    return cs, client


def test_the_form_shows_the_chosen_categorys_fields_none_required(app, db):
    _cs, client = signed_in(app, db)
    blank = client.get("/portal/tickets/new").text
    assert 'hx-get="/portal/tickets/new/fields"' in blank
    assert "cf__line_id" not in blank  # no category chosen yet
    # The fragment the select fetches when the category changes.
    frag = client.get(
        "/portal/tickets/new/fields",
        params={"category_code": "fault_repair"},
        headers={"HX-Request": "true", "HX-Target": "request-fields"},
    )
    assert frag.status_code == 200 and "<html" not in frag.text
    assert 'name="cf__line_id"' in frag.text and 'name="cf__loss_db"' in frag.text
    assert "单模" in frag.text and "cf__install_on" not in frag.text
    assert " required" not in frag.text  # a customer is asked, never obliged
    other = client.get(
        "/portal/tickets/new/fields",
        params={"category_code": "installation"},
        headers={"HX-Request": "true"},
    ).text
    assert 'name="cf__install_on"' in other and 'type="date"' in other
    assert "cf__line_id" not in other
    unknown = client.get("/portal/tickets/new/fields", params={"category_code": "nope"})
    assert unknown.status_code == 200 and "cf__" not in unknown.text
    # Without JavaScript: the form's GET keeps what was typed and shows the fields.
    page = client.get(
        "/portal/tickets/new",
        params={"category_code": "fault_repair", "subject": "断网了", "description": "全楼"},
    ).text
    assert 'name="cf__line_id"' in page and 'value="断网了"' in page and "全楼" in page
    # Signed out: no fields, the sign-in page.
    out = TestClient(app).get("/portal/tickets/new/fields", follow_redirects=False)
    assert out.status_code in (303, 307) and "/portal/login" in out.headers["location"]


def test_values_given_are_stored_and_required_ones_may_stay_empty(app, db):
    cs, client = signed_in(app, db)
    r = portal_post(
        client,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.stranger.id),
            "category_code": "fault_repair",
            "subject": "光纤中断",
            "description": "从早上开始",
            "cf__line_id": "",  # required of staff, not of the customer
            "cf__loss_db": " 3.5 ",
            "cf__fibre_kind": "sm",
            "cf__install_on": "2026-12-01",  # another category's input: not this request's
        },
    )
    assert r.status_code == 303, r.text
    tid = int(r.headers["location"].split("/")[-1].split("?")[0])
    ticket = db.get(Ticket, tid)
    assert ticket.channel == "portal"
    assert ticket.custom_fields == {"loss_db": 3.5, "fibre_kind": "sm"}
    typed = db.execute(
        select(TicketFieldValue.value_number, TicketFieldValue.value_text)
        .where(TicketFieldValue.ticket_id == tid)
        .order_by(TicketFieldValue.field_id)
    ).all()
    assert [(float(n) if n is not None else None, t) for n, t in typed] == [
        (3.5, None),
        (None, "sm"),
    ]


def test_a_bad_value_is_named_beside_its_input_and_nothing_is_written(app, db):
    cs, client = signed_in(app, db)
    before = db.scalar(select(func.count()).select_from(Ticket))
    files_before = db.scalar(select(func.count()).select_from(TicketAttachment))
    r = portal_post(
        client,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.stranger.id),
            "category_code": "fault_repair",
            "subject": "光纤中断",
            "description": "从早上开始",
            "cf__line_id": "L-001",
            "cf__loss_db": "很多",
            "cf__fibre_kind": "both",
        },
        files=[("files", ("照片.png", PNG, "image/png"))],
    )
    assert r.status_code == 422
    page = r.text
    assert 'id="f-new-cf__loss_db-error"' in page and "衰耗必须是数字" in page
    assert 'id="f-new-cf__fibre_kind-error"' in page and "单模、多模" in page
    assert 'value="L-001"' in page and 'value="光纤中断"' in page  # what was typed stays
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Ticket)) == before
    assert db.scalar(select(func.count()).select_from(TicketAttachment)) == files_before


def test_english_labels_and_messages(app, db):
    cs, client = signed_in(app, db)
    client.cookies.set("kefu_lang", "en")
    r = portal_post(
        client,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.stranger.id),
            "category_code": "installation",
            "subject": "New line",
            "description": "Please install",
            "cf__install_on": "1/12/2026",
        },
    )
    assert r.status_code == 422
    assert "Install on" in r.text and "Install on must be a date (YYYY-MM-DD)." in r.text
