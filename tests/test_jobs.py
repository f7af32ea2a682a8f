from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from kefu import clock
from kefu.auth import service as auth
from kefu.auth.models import LoginAttempt, WebSession
from kefu.jobs import housekeeping
from tests.factories import make_staff, make_unit


def test_housekeeping_forgets_expired_sessions_and_attempts(db):
    staff = make_staff(db, make_unit(db))
    auth.start_session(db, staff, remote_addr="127.0.0.1", user_agent="t")
    db.add(LoginAttempt(username="x", remote_addr="10.0.0.1", at=clock.now() - timedelta(days=2)))
    db.add(LoginAttempt(username="y", remote_addr="10.0.0.1"))
    db.flush()
    first = housekeeping.run(db)
    assert first["sessions"] == 0 and first["login_attempts"] == 1  # the one two days old
    later = clock.now() + timedelta(hours=25)
    clock.set_now(lambda: later)
    counts = housekeeping.run(db)
    assert counts["sessions"] == 1 and counts["login_attempts"] == 1
    assert db.scalar(select(func.count()).select_from(WebSession)) == 0


def test_holiday_data_job_logs_the_missing_year_once_a_day(db, caplog, monkeypatch):
    from datetime import UTC, datetime

    from kefu.jobs import holiday_data

    monkeypatch.setattr(holiday_data, "_last", None)  # this process may have logged already

    clock.set_now(lambda: datetime(2026, 6, 1, tzinfo=UTC))
    assert holiday_data.run(db) == {"missing": []}
    clock.set_now(lambda: datetime(2026, 11, 26, tzinfo=UTC))
    with caplog.at_level("WARNING", logger="kefu.worker"):
        first = holiday_data.run(db)
        holiday_data.run(db)
    assert first["missing"][0]["years"] == [2027]  # the default calendar, China
    logged = [r for r in caplog.records if "holiday data needs an update" in r.getMessage()]
    assert len(logged) == 1 and "2027" in logged[0].getMessage()
