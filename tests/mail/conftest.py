from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from kefu.config import Settings
from kefu.customers import service as customers
from kefu.customers.schemas import ContactCreate
from kefu.mail import service as mail
from kefu.mail.models import Mailbox
from kefu.mail.schemas import MailboxCreate
from kefu.scope import SYSTEM
from tests.factories import make_customer, make_staff, make_unit
from tests.mail.servers import Dovecot, smtp_server


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(settings: Settings):  # type: ignore[no-untyped-def]
    """A real SMTP server on 127.0.0.1 (aiosmtpd), and the settings that send to it."""
    controller, inbox = smtp_server()
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    settings.smtp_security = "plain"
    yield inbox
    controller.stop()


@pytest.fixture
def mail_settings(settings: Settings, dovecot: Dovecot) -> Settings:
    settings.mail_ca_file = str(dovecot.cert)  # trust the test server's own certificate
    return settings


@dataclass
class Shop:
    """A unit with an agent, a customer with a contact, and a mailbox on dovecot."""

    db: Session
    server: Dovecot
    user: str
    box: Mailbox
    customer: object
    contact: object
    unit: object


def make_mailbox(
    db: Session, server: Dovecot, unit, security: str = "plain", **kw
) -> tuple[Mailbox, str]:  # type: ignore[no-untyped-def]
    user, password = server.add_user()
    port = server.tls_port if security == "tls" else server.port
    data = MailboxCreate(
        name=kw.pop("name", "客服邮箱"),
        address=kw.pop("address", f"{user}@kefu.example.cn"),
        unit_id=unit.id,
        imap_host=kw.pop("host", "127.0.0.1"),
        imap_port=port,
        imap_security=security,  # type: ignore[arg-type]
        imap_user=user,
        imap_password=password,
        **kw,
    )
    box = mail.create_mailbox(db, SYSTEM, data)
    db.flush()
    return box, user


@pytest.fixture
def shop(db: Session, dovecot: Dovecot, mail_settings: Settings) -> Shop:
    unit = make_unit(db, "杭州分公司", region_code="330100")
    make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit, name="华东机械有限公司")
    contact = customers.add_contact(
        db,
        SYSTEM,
        customer.id,
        ContactCreate(name="张伟", email="Zhang.Wei@HuadongJX.cn", preferred_channel="email"),
    )
    db.flush()
    box, user = make_mailbox(db, dovecot, unit)
    return Shop(db, dovecot, user, box, customer, contact, unit)
