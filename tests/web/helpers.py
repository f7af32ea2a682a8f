"""Driving the pages like a browser: sign in through the form, post forms with their token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import PASSWORD

HX = {"HX-Request": "true"}


def token_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: str) -> Any:
    page = client.get("/login")
    assert page.status_code == 200
    data = {"username": username, "password": password, "csrf_token": token_in(page.text)}
    return client.post("/login", data={**data, **extra}, follow_redirects=False)


def signed_in(client: TestClient, username: str) -> TestClient:
    r = login(client, username)
    assert r.status_code == 303, r.text
    return client


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """Post a form the way the page would: with the CSRF token of the signed-in session."""
    token = token_in(client.get("/").text)
    kw.setdefault("follow_redirects", False)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kw)


def field_error(html: str, field_id: str) -> str:
    """The inline message shown beside the field with this element id ('' when none)."""
    found = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', html)
    return found.group(1).strip() if found else ""


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free local port; yield its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
