from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from kefu.audit.models import AuditEntry
from kefu.cli import app
from kefu.config import use_settings
from kefu.customers.models import Contact, Customer, RevenueRecord
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.knowledge.models import Phrase
from kefu.portal import service as portal_service
from kefu.portal.models import PortalAccount
from kefu.staff.models import Staff
from kefu.tickets.models import TicketView
from kefu.units.models import Unit

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    url = "sqlite:///" + str(tmp_path / "cli.db")
    monkeypatch.setenv("KEFU_DATABASE_URL", url)
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "var"))
    use_settings(None)
    yield make_sessionmaker(make_engine(url))
    use_settings(None)


def test_init_twice_is_harmless(cli_db):
    first = runner.invoke(app, ["init"])
    second = runner.invoke(app, ["init"])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "schema up to date" in second.output


def test_create_admin_and_refuse_bad_input(cli_db):
    r = runner.invoke(app, ["create-admin", "--username", "root", "--password", "short"])
    assert r.exit_code == 1
    assert "password" in r.output
    r = runner.invoke(app, ["create-admin", "--username", "root", "--password", "long enough 1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["create-admin", "--username", "root", "--password", "long enough 1"])
    assert r.exit_code == 1 and "username" in r.output
    with unit_of_work(cli_db) as s:
        assert s.scalar(select(func.count()).select_from(Staff)) == 1
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "staff.create")).one()
        assert entry.channel == "cli" and entry.actor_name.startswith("cli:")


def test_demo_then_token(cli_db):
    r = runner.invoke(app, ["demo", "--customers", "300", "--tickets", "400"])
    assert r.exit_code == 0, r.output
    assert "admin / kefu-demo-2026" in r.output
    assert "demo customers: 300 customers" in r.output
    assert "demo tickets: 400 tickets" in r.output
    portal_logins = re.findall(r"sign in as (\S+@\S+) / kefu-demo-2026", r.output)
    assert len(portal_logins) == 3
    with unit_of_work(cli_db) as s:
        for login in portal_logins:  # the printed sign-ins work with the printed password
            assert portal_service.authenticate(s, login, "kefu-demo-2026", "10.9.9.9").account
        admins = s.scalar(
            select(func.count())
            .select_from(PortalAccount)
            .join(Contact, Contact.id == PortalAccount.contact_id)
            .where(Contact.is_group_admin.is_(True))
        )
        assert admins == 1
    # Phrases for everyone and views the province and each city share with their subtree.
    assert re.search(r"demo console: \d+ phrases, \d+ shared views", r.output)
    with unit_of_work(cli_db) as s:
        units = s.scalar(select(func.count()).select_from(Unit))
        counties = s.scalar(select(func.count()).select_from(Unit).where(Unit.depth == 2))
        cities = s.scalar(select(func.count()).select_from(Unit).where(Unit.depth == 1))
        staff = s.scalar(select(func.count()).select_from(Staff))
        tiers = dict(s.execute(select(Customer.tier, func.count()).group_by(Customer.tier)).all())
        groups = s.scalar(select(func.count()).select_from(Customer).where(Customer.depth == 1))
        revenue = s.scalar(select(func.count()).select_from(RevenueRecord))
        views = s.scalar(select(func.count()).select_from(TicketView))
        phrases = s.scalar(select(func.count()).select_from(Phrase))
    assert set(tiers) == {"A", "B", "C"} and all(n > 0 for n in tiers.values())
    assert groups > 0 and revenue > 300 * 12
    assert 3 <= cities <= 5 and counties >= 10 and units == 1 + cities + counties
    assert staff >= 30
    assert views == 3 * (1 + cities) and phrases == 5 + 1 + cities
    with unit_of_work(cli_db) as s:
        from kefu.tickets.models import TicketField

        keys = set(s.scalars(select(TicketField.key)))
    assert {"line_id", "fault_kind", "visit_date", "order_amount", "crm_ref"} <= keys
    again = runner.invoke(app, ["demo", "--customers", "300", "--tickets", "400"])
    assert again.exit_code == 0
    with unit_of_work(cli_db) as s:
        assert s.scalar(select(func.count()).select_from(Unit)) == units
        assert s.scalar(select(func.count()).select_from(TicketField)) == len(keys)

    r = runner.invoke(app, ["token", "create", "--username", "admin", "--name", "CRM"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[0]
    assert token.startswith("kefu_")
    listed = runner.invoke(app, ["token", "list"])
    assert "CRM" in listed.output and token not in listed.output
    r = runner.invoke(app, ["token", "create", "--username", "nobody", "--name", "x"])
    assert r.exit_code == 1

    r = runner.invoke(app, ["retier", "--date", "2026-13-01"])
    assert r.exit_code == 1 and "--date" in r.output
    r = runner.invoke(app, ["retier", "--apply", "--date", "2026-06-30"])
    assert r.exit_code == 0, r.output
    assert "tiers:" in r.output and "applied" in r.output


def test_help_is_there():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for command in ("init", "create-admin", "serve", "worker", "demo", "token"):
        assert command in r.output
