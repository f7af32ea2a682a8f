"""Figure: email intake from a local IMAP server, at least 50 mails/s into tickets with one
worker.

A real dovecot is started on 127.0.0.1 (as the tests start it: `tests/mail/servers.py`),
and `--mails` mails are appended to one mailbox: three quarters new requests from known
contacts (Chinese and English, one in ten with a small PDF attached), one quarter replies
in the thread of an earlier one (In-Reply-To). Appending is set-up, not timed. Then the
worker's fetch job (`kefu.jobs.mail_fetch.run`, the code `kefu worker` runs) is called until
the mailbox has nothing unseen; the figure is mails taken in per second of that wall time:
each mail is downloaded, parsed, matched, turned into a ticket (or a message on its ticket)
through the one intake service in its own committed transaction, then flagged \\Seen.

The machine's load average is recorded before and after: other processes share the CPUs.

    .venv/bin/python -m benchmarks.email_intake                 # SQLite in a temp dir
    .venv/bin/python -m benchmarks.email_intake --database-url postgresql+psycopg://…/kefu_bench

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    REPO,
    check_resettable,
    emit,
    ensure_postgres_database,
    machine,
    progress,
    stamp,
)

sys.path.insert(0, str(REPO))

TARGET = 50.0  # mails per second


def _seed(factory: Any, server: Any, customers: int) -> tuple[str, list[str]]:
    from kefu.customers import service as customer_service
    from kefu.customers.schemas import ContactCreate, CustomerCreate
    from kefu.db import unit_of_work
    from kefu.mail import service as mail
    from kefu.mail.schemas import MailboxCreate
    from kefu.scope import SYSTEM
    from kefu.staff import service as staff_service
    from kefu.staff.schemas import StaffCreate
    from kefu.units import service as unit_service
    from kefu.units.schemas import UnitCreate

    user, password = server.add_user("bench")
    senders = []
    with unit_of_work(factory) as session:
        unit = unit_service.create_unit(
            session, SYSTEM, UnitCreate(name="杭州分公司", region_code="330100")
        )  # type: ignore[call-arg]
        session.flush()
        for i in range(5):
            staff_service.create_staff(
                session,
                SYSTEM,
                StaffCreate(
                    username=f"agent{i}",
                    display_name=f"坐席{i}",
                    unit_id=unit.id,
                    roles=["agent"],
                    password="bench password 1",  # type: ignore[arg-type]
                ),  # type: ignore[call-arg]
            )
        for i in range(customers):
            customer = customer_service.create_customer(
                session,
                SYSTEM,
                CustomerCreate(
                    name=f"客户{i:04d}有限公司", owning_unit_id=unit.id, region_code="330106"
                ),  # type: ignore[call-arg]
            )
            session.flush()
            email = f"contact{i}@customer{i}.example.cn"
            customer_service.add_contact(
                session,
                SYSTEM,
                customer.id,
                ContactCreate(
                    name=f"联系人{i}", email=email, locale="en" if i % 3 == 0 else "zh_CN"
                ),  # type: ignore[call-arg]
            )
            senders.append(email)
        mail.create_mailbox(
            session,
            SYSTEM,
            MailboxCreate(
                name="客服邮箱",
                address="support@kefu.example.cn",
                unit_id=unit.id,
                imap_host="127.0.0.1",
                imap_port=server.port,
                imap_security="plain",
                imap_user=user,
                imap_password=password,
            ),
        )
    return user, senders


def _mails(count: int, senders: list[str]) -> tuple[list[bytes], int, int]:
    from tests.mail.builders import mail as build
    from tests.mail.builders import new_id

    out, ids = [], []
    new = replies = 0
    pdf = b"%PDF-1.4\n" + b"0" * 20_000 + b"\n%%EOF\n"
    for i in range(count):
        sender = senders[i % len(senders)]
        if i % 4 == 3 and ids:
            earlier = ids[(i * 7) % len(ids)]
            out.append(
                build(
                    sender if earlier[1] == sender else earlier[1],
                    "Re: 设备故障",
                    "补充：重启后仍然不行。\nStill failing after a restart.",
                    in_reply_to=earlier[0],
                    references=[earlier[0]],
                )
            )
            replies += 1
            continue
        mid = new_id()
        chinese = i % 2 == 0
        out.append(
            build(
                sender,
                f"设备故障报修 #{i}" if chinese else f"Printer on floor {i % 9} jams",
                ("会议室的设备无法开机，请安排工程师上门。\n" * 5)
                if chinese
                else ("The printer jams on every second page.\n" * 5),
                msgid=mid,
                attachments=[("report.pdf", "application/pdf", pdf)] if i % 10 == 0 else None,
            )
        )
        ids.append((mid, sender))
        new += 1
    return out, new, replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args(argv)

    from sqlalchemy import func, select
    from tests.mail.servers import Dovecot

    from kefu import schema
    from kefu.config import Settings, use_settings
    from kefu.db import make_engine, make_sessionmaker, unit_of_work
    from kefu.jobs import mail_fetch
    from kefu.mail.models import InboundMail
    from kefu.tickets.models import Ticket

    workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-mail-"))
    url = args.database_url or f"sqlite:///{workdir / 'kefu.db'}"
    if args.database_url:
        check_resettable(url)  # never the test suite's database: its schema is dropped
        ensure_postgres_database(url)
    use_settings(
        Settings(
            database_url=url,
            data_dir=workdir / "var",
            secret_key="bench-secret",
            embedded_worker=False,
        )
    )
    engine = make_engine(url)
    if args.database_url:
        from sqlalchemy import text

        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    with engine.begin() as conn:
        schema.upgrade(connection=conn)
    factory = make_sessionmaker(engine)

    server = Dovecot.start()
    try:
        progress("seeding customers and the mailbox")
        user, senders = _seed(factory, server, args.customers)
        raws, new, replies = _mails(args.mails, senders)
        progress(f"appending {len(raws)} mails to dovecot")
        t = time.perf_counter()
        server.deliver(user, *raws)
        append_s = time.perf_counter() - t

        load_before = os.getloadavg()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        runs = 0
        while True:
            runs += 1
            result = mail_fetch.run(factory)
            if not result["taken"] or runs > 100:
                break
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        load_after = os.getloadavg()

        with unit_of_work(factory, write=False) as session:
            tickets = session.scalar(select(func.count()).select_from(Ticket))
            by_status = dict(
                session.execute(
                    select(InboundMail.status, func.count()).group_by(InboundMail.status)
                ).all()
            )
        conn = server.client(user)
        unseen = conn.uid("SEARCH", None, "UNSEEN")[1][0].split()
        conn.logout()
    finally:
        server.stop()
        engine.dispose()

    rate = len(raws) / wall
    ok = tickets == new and by_status.get("reply") == replies and not unseen
    emit(
        {
            "benchmark": "email_intake",
            "at": stamp(),
            "database": engine.dialect.name,
            "mails": len(raws),
            "new_requests": new,
            "replies_in_thread": replies,
            "with_attachment": sum(1 for i in range(args.mails) if i % 10 == 0 and i % 4 != 3),
            "append_s": round(append_s, 2),
            "fetch_runs": runs,
            "wall_s": round(wall, 2),
            "cpu_s_of_this_process": round(cpu, 2),
            "mails_per_s": round(rate, 1),
            "ms_per_mail": round(1000 * wall / len(raws), 2),
            "target_mails_per_s": TARGET,
            "tickets": tickets,
            "log": by_status,
            "unseen_left": len(unseen),
            "correct": ok,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "machine": machine(),
            "pass": bool(ok and rate >= TARGET),
        }
    )
    return 0 if ok and rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
