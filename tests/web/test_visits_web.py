"""Return visits, recovery, satisfaction and the public survey page (pages and forms)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.scope import SYSTEM
from kefu.surveys import service as surveys
from kefu.surveys.models import RecoveryTask, SurveyAnswer
from kefu.surveys.schemas import InvitationIn
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate
from kefu.visits.models import ReturnVisit
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org
from tests.web.helpers import field_error, post, signed_in, token_in

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)
DIMS = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def resolved(db, customer, agent=None, category="technical_support"):
    t = tickets.open_ticket(
        db,
        SYSTEM,
        TicketCreate(customer_id=customer.id, category_code=category, subject="宽带故障"),
        channel="phone",
    )
    if agent is not None:
        t.assignee_id = agent.id
    tickets.change_state(db, SYSTEM, t, "resolved")
    db.commit()
    return t


def visit_for(db, ticket):
    return db.scalars(select(ReturnVisit).where(ReturnVisit.ticket_id == ticket.id)).one()


def answers(e=6, p=6, csat="5", nps="9"):
    data = {f"e_{d}": str(e) for d in DIMS}
    data.update({f"p_{d}": str(p) for d in DIMS})
    data.update({"csat": csat, "nps": nps, "comment": "服务很好"})
    return data


@pytest.fixture
def desk(client, db):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    head = make_staff(db, unit, username="head", roles=("supervisor",))
    agent = make_staff(db, unit, username="agent.one")
    customer = make_customer(db, unit, "杭州西湖电子有限公司")
    db.commit()
    return {"unit": unit, "head": head, "agent": agent, "customer": customer}


def test_queue_visit_page_and_outcome_form(client, db, desk):
    t = resolved(db, desk["customer"], desk["agent"])
    v = visit_for(db, t)
    signed_in(client, "agent.one")
    page = client.get("/visits")
    assert page.status_code == 200
    assert "杭州西湖电子有限公司" in page.text and f'href="/visits/{v.id}"' in page.text
    detail = client.get(f"/visits/{v.id}")
    assert "记录回访结果" in detail.text and t.number in detail.text
    # Reached without saying whether satisfied: the field is named, nothing saved.
    r = post(client, f"/visits/{v.id}/outcome", {"version": v.version, "reached": "yes"})
    assert r.status_code == 422
    assert field_error(r.text, "f-outcome-satisfied") == "请填写客户是否满意。"
    r = post(
        client,
        f"/visits/{v.id}/outcome",
        {"version": v.version, "reached": "yes", "satisfied": "yes", "customer_words": "满意"},
    )
    assert r.status_code == 303
    db.expire_all()
    assert visit_for(db, t).state == "done"
    assert "满意" in client.get(f"/visits/{v.id}").text


def test_phone_answers_on_the_visit_page(client, db, desk):
    t = resolved(db, desk["customer"], desk["agent"])
    v = visit_for(db, t)
    signed_in(client, "agent.one")
    bad = answers()
    bad["p_empathy"] = "9"
    r = post(client, f"/visits/{v.id}/answer", bad)
    assert r.status_code == 422
    assert field_error(r.text, "f-answer-p_empathy")
    assert db.scalar(select(SurveyAnswer.id)) is None
    r = post(client, f"/visits/{v.id}/answer", answers())
    assert r.status_code == 303
    a = db.scalars(select(SurveyAnswer)).one()
    assert a.channel == "phone" and a.entered_by == "agent.one" and a.index == 100.0


def test_public_survey_once_in_the_contacts_language(client, db, desk):
    t = resolved(db, desk["customer"], desk["agent"])
    _, token = surveys.invite(db, SYSTEM, InvitationIn(ticket_id=t.id))
    db.commit()
    page = client.get(f"/s/{token}")  # signed out
    assert page.status_code == 200
    assert "满意度调查" in page.text and t.number in page.text and "可靠性" in page.text
    csrf = token_in(page.text)
    missing = answers()
    del missing["e_tangibles"]
    r = client.post(f"/s/{token}", data={"csrf_token": csrf, **missing})
    assert r.status_code == 422
    assert field_error(r.text, "f-answer-e_tangibles")
    r = client.post(f"/s/{token}", data={"csrf_token": csrf, **answers(e=6, p=5, csat="4")})
    assert r.status_code == 200 and "谢谢" in r.text
    again = client.post(f"/s/{token}", data={"csrf_token": csrf, **answers()})
    assert again.status_code == 409 and "已经填写过" in again.text
    assert client.get("/s/forged-token").status_code == 404
    # Without the form's token the post is refused and nothing is stored twice.
    assert len(db.scalars(select(SurveyAnswer)).all()) == 1


def test_satisfaction_page_and_drill_down(client, db):
    org = build_org(db, roles=("manager", "supervisor"))
    for unit, p, csat in ((org.county_x, 7, "5"), (org.county_z, 3, "1")):
        customer = make_customer(db, unit)
        db.commit()
        t = resolved(db, customer)
        _, token = surveys.invite(db, SYSTEM, InvitationIn(ticket_id=t.id))
        db.commit()
        csrf = token_in(client.get(f"/s/{token}").text)
        assert (
            client.post(
                f"/s/{token}", data={"csrf_token": csrf, **answers(6, p, csat, "9")}
            ).status_code
            == 200
        )
    signed_in(client, "m-province")
    page = client.get(f"/satisfaction?unit_id={org.province.id}&year=2026")
    assert page.status_code == 200
    # (35 + 15) ÷ (30 + 30) × 100
    assert re.search(r'id="kpi-index">83\.3<', page.text)
    assert f"/satisfaction?unit_id={org.city_a.id}&amp;year=2026" in page.text
    assert "<svg" in page.text
    low = client.get(f"/satisfaction/answers?unit_id={org.province.id}&low=1")
    assert low.text.count("<tr>") == 2  # header row + the one low answer
    # A county manager cannot look at the province.
    client.cookies.clear()
    signed_in(client, "m-county-x")
    assert client.get(f"/satisfaction?unit_id={org.province.id}").status_code == 404
    mine = client.get("/satisfaction")
    assert re.search(r'id="kpi-index">116\.7<', mine.text)
    # The low answer opened a recovery task for Z's head; X's manager does not see it.
    task = db.scalars(select(RecoveryTask)).one()
    assert client.get(f"/recovery/{task.id}").status_code == 404
    client.cookies.clear()
    signed_in(client, "m-county-z")
    assert "处理" in client.get("/recovery").text or client.get("/recovery").status_code == 200
    r = post(client, f"/recovery/{task.id}/done", {"version": task.version, "outcome": ""})
    assert r.status_code == 422
    r = post(client, f"/recovery/{task.id}/done", {"version": task.version, "outcome": "上门致歉"})
    assert r.status_code == 303
    db.expire_all()
    assert db.get(RecoveryTask, task.id).followup_visit_id is not None


def test_complaint_pages(client, db, desk):
    t = resolved(db, desk["customer"], desk["agent"], category="complaint")
    from kefu.complaints.models import Complaint

    c = db.scalars(select(Complaint).where(Complaint.ticket_id == t.id)).one()
    head = make_staff(db, desk["unit"], username="boss", roles=("manager",))
    db.commit()
    signed_in(client, head.username)
    page = client.get(f"/tickets/{t.id}")
    assert f'href="/complaints/{c.id}"' in page.text
    r = post(
        client,
        f"/complaints/{c.id}",
        {
            "version": c.version,
            "severity": "2",
            "cause_code": "nope",
            "remedy": "",
            "compensation": "x",
        },
    )
    assert r.status_code == 422
    assert field_error(r.text, "f-analysis-compensation")
    r = post(
        client,
        f"/complaints/{c.id}",
        {
            "version": c.version,
            "severity": "2",
            "cause_code": "billing",
            "remedy": "退还多收费用",
            "compensation": "800",
        },
    )
    assert r.status_code == 303
    db.expire_all()
    c = db.get(Complaint, c.id)
    assert c.compensation_state == "pending" and c.cause_code == "billing"
    r = post(client, f"/complaints/{c.id}/compensation", {"version": c.version, "approve": "1"})
    assert r.status_code == 303
    r = post(
        client, f"/complaints/{c.id}/verify", {"version": c.version + 1, "verification": "客户确认"}
    )
    assert r.status_code == 303
    register = client.get(f"/complaints?unit_id={desk['unit'].id}&year=2026")
    assert register.status_code == 200 and "计费差错" in register.text
    assert re.search(r"<td class=\"num\">100\.00</td>", register.text)  # 1 of 1 customer


def test_loyalty_page(client, db, desk):
    from datetime import date
    from decimal import Decimal

    from kefu.customers.models import RevenueRecord

    c = desk["customer"]
    db.add(RevenueRecord(customer_id=c.id, date=date(2025, 6, 1), amount=Decimal("1000")))
    db.add(RevenueRecord(customer_id=c.id, date=date(2026, 6, 1), amount=Decimal("200")))
    db.commit()
    head = make_staff(db, desk["unit"], username="boss", roles=("manager",))
    from kefu.loyalty import service as loyalty

    loyalty.refresh_if_stale(db)  # the worker's daily revenue trend
    db.commit()
    signed_in(client, head.username)
    page = client.get("/loyalty?year=2026")
    assert page.status_code == 200
    assert re.search(r'id="kpi-retention">100\.0%<', page.text)
    assert re.search(r'id="kpi-risk">1<', page.text)
    assert f'href="/customers/{c.id}"' in page.text and "收入下滑" in page.text


def test_admins_edit_the_survey_wording(client, db, desk):
    admin = make_staff(db, desk["unit"], username="root.admin", roles=("admin",))
    db.commit()
    signed_in(client, "agent.one")
    assert client.get("/survey-templates").status_code == 404
    client.cookies.clear()
    signed_in(client, admin.username)
    page = client.get("/survey-templates")
    assert page.status_code == 200 and "可靠性：按承诺准确地提供服务" in page.text
    data = {"name": "SERVQUAL"}
    for key in (
        "intro",
        "reliability",
        "responsiveness",
        "assurance",
        "empathy",
        "tangibles",
        "csat",
        "nps",
        "comment",
    ):
        data[f"{key}.zh_CN"] = f"{key} 中文"
        data[f"{key}.en"] = f"{key} English"
    data["empathy.en"] = ""
    r = post(client, "/survey-templates/1", data)
    assert r.status_code == 422 and "empathy 中文" in r.text
    data["empathy.en"] = "Do we understand your needs?"
    assert post(client, "/survey-templates/1", data).status_code == 303
    t = resolved(db, desk["customer"], desk["agent"])
    _, token = surveys.invite(db, SYSTEM, InvitationIn(ticket_id=t.id))
    db.commit()
    client.cookies.clear()
    assert "empathy 中文" in client.get(f"/s/{token}").text
