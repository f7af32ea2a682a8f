"""Picks the request's language before anything else runs.

Order: the `kefu_lang` cookie (the web's language switch), then Accept-Language, then the
default. A signed-in person's saved choice is applied later, where the person is known.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from kefu.i18n import DEFAULT_LOCALE, LOCALES, from_accept_language, set_locale

COOKIE = "kefu_lang"


class LocaleMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        accept = from_accept_language(headers.get("accept-language"))
        cookie = _cookie(headers.get("cookie", ""), COOKIE)
        chosen = cookie if cookie in LOCALES else None
        state = scope.setdefault("state", {})
        state["accept_locale"] = accept
        state["cookie_locale"] = chosen
        state["locale"] = chosen or accept or DEFAULT_LOCALE
        set_locale(state["locale"])
        await self.app(scope, receive, send)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
