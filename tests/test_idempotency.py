from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kefu.app import create_app
from kefu.db import make_sessionmaker, unit_of_work
from kefu.units.models import Unit
from tests.factories import make_staff, make_unit, token_for


def test_racing_first_tries_make_one_unit(committed_engine, settings):
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as db:
        root = make_unit(db, "根")
        headers = token_for(db, make_staff(db, root, roles=("admin",)))
        root_id = root.id
    app = create_app(settings, factory)
    body = {"name": "并发市", "parent_id": root_id, "region_code": "330100"}
    barrier = threading.Barrier(4)
    answers: list[tuple[int, int]] = []

    def post() -> None:
        with TestClient(app) as c:
            barrier.wait()
            r = c.post("/api/v1/units", json=body, headers={**headers, "Idempotency-Key": "same"})
            answers.append((r.status_code, r.json()["id"]))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4
    assert {status for status, _ in answers} == {201}
    assert len({uid for _, uid in answers}) == 1
    with unit_of_work(factory) as db:
        assert db.scalar(select(func.count()).select_from(Unit).where(Unit.name == "并发市")) == 1
