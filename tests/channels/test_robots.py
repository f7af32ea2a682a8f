"""WeCom / DingTalk / Feishu robots of a unit against a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from kefu.auth.service import viewer_for
from kefu.channels import robots, service
from kefu.channels.models import Delivery
from kefu.channels.schemas import RobotIn
from kefu.errors import Forbidden, Invalid
from kefu.jobs import deliver
from kefu.notifications.service import notify
from kefu.scope import SYSTEM
from tests.channels.receiver import Receiver
from tests.factories import make_staff, make_unit

ESCALATION = {
    "ticket_id": 12,
    "number": "T2026-0000012",
    "subject": "打印机卡纸",
    "target": "resolution",
    "stage": "breach",
    "due": "2026-11-26T02:00:00+00:00",
    "title": "Resolution overdue",
}


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    settings.webhook_allow_private_targets = True
    r = Receiver().start()
    r.answer = b'{"errcode": 0, "errmsg": "ok"}'
    yield r
    r.stop()


def _robot(db, unit, kind, url, locale="zh_CN", secret=None, topics=("sla.breach",)):  # type: ignore[no-untyped-def]
    return service.create_robot(
        db,
        SYSTEM,
        RobotIn(
            unit_id=unit.id,
            kind=kind,
            name=f"{kind} group",
            url=url,
            secret=secret,
            topics=list(topics),
            locale=locale,
        ),
    )


def test_each_kind_gets_its_format_signed_in_the_units_language(db, session_factory, receiver):
    unit = make_unit(db, name="杭州市分公司")
    other = make_unit(db, name="宁波市分公司")
    make_staff(db, unit, roles=("supervisor",))
    _robot(db, unit, "wecom", receiver.url + "?key=abc")
    _robot(db, unit, "dingtalk", receiver.url + "?access_token=t", "en", "SECdt")
    _robot(db, unit, "feishu", receiver.url + "/feishu", secret="fs-secret")
    _robot(db, other, "wecom", receiver.url + "?key=other")  # another unit's: silent
    _robot(db, unit, "wecom", receiver.url + "?key=created", topics=["ticket.created"])
    notify(db, "sla.breach", f"unit_head:{unit.id}", ESCALATION, "rb1")
    db.commit()
    deliver.run(session_factory)
    assert len(receiver.requests) == 3
    by_path = {p: json.loads(b) for p, _, b in receiver.requests}
    wecom = next(v for k, v in by_path.items() if "key=abc" in k)
    assert wecom["msgtype"] == "markdown"
    content = wecom["markdown"]["content"]
    assert "解决超时" in content or "超时" in content
    assert "T2026-0000012" in content and "打印机卡纸" in content and "杭州市分公司" in content
    assert "2026" in content  # the due time, in the unit's zone

    ding_path, ding = next((k, v) for k, v in by_path.items() if "access_token" in k)
    query = parse_qs(urlsplit(ding_path).query)
    ts = int(query["timestamp"][0])
    assert query["sign"][0] == robots.dingtalk_sign("SECdt", ts)
    assert ding["markdown"]["title"] == "Resolution overdue"  # English robot
    assert "Resolution overdue" in ding["markdown"]["text"]

    feishu = next(v for k, v in by_path.items() if k.startswith("/hook/feishu"))
    assert feishu["msg_type"] == "interactive"
    assert feishu["sign"] == robots.feishu_sign("fs-secret", int(feishu["timestamp"]))
    assert feishu["card"]["header"]["template"] == "red"
    assert feishu["card"]["elements"][0]["tag"] == "markdown"
    rows = db.scalars(select(Delivery).where(Delivery.channel == "robot")).all()
    assert {r.status for r in rows} == {"delivered"}


def test_error_codes_retry_or_dead_letter(db, session_factory, receiver, settings):
    settings.delivery_backoff_base_seconds = 0.01
    unit = make_unit(db)
    _robot(db, unit, "wecom", receiver.url + "?key=limited")
    notify(db, "sla.breach", f"unit:{unit.id}", ESCALATION, "rb2")
    db.commit()
    receiver.answer = b'{"errcode": 45009, "errmsg": "api freq out of limit"}'
    deliver.run(session_factory)
    (row,) = db.scalars(select(Delivery).where(Delivery.channel == "robot")).all()
    assert row.status == "pending" and "45009" in (row.last_error or "")
    receiver.answer = b'{"errcode": 93000, "errmsg": "invalid webhook url"}'
    db.execute(Delivery.__table__.update().values(next_attempt_at=row.created_at))
    db.commit()
    deliver.run(session_factory)
    db.refresh(row)
    assert row.status == "dead" and "93000" in (row.last_error or "")


def test_robot_rules(db, receiver):
    unit = make_unit(db)
    with pytest.raises(Invalid) as err:
        _robot(db, unit, "dingtalk", receiver.url)  # DingTalk without its secret
    assert err.value.errors[0].field == "secret"
    with pytest.raises(Invalid):
        _robot(db, unit, "wecom", receiver.url, topics=["*"])
    agent = make_staff(db, unit, roles=("agent",))
    with pytest.raises(Forbidden):
        service.create_robot(
            db,
            viewer_for(agent, unit.path, channel="api"),
            RobotIn(
                unit_id=unit.id, kind="wecom", name="x", url=receiver.url, topics=["sla.breach"]
            ),
        )
