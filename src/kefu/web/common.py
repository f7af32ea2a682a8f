"""What every page shares: the template environment, the request's transaction, who is
signed in, CSRF, rendering a page or its HTMX fragment, and forms with inline errors.

The only module that builds the Jinja2 environment (only web/ imports Jinja2).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, Template, select_autoescape
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu import i18n
from kefu.auth import service as auth
from kefu.config import get_settings
from kefu.db import unit_of_work
from kefu.errors import FieldError, Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.pagination import MAX_LIMIT, paginate
from kefu.scope import Viewer
from kefu.staff.models import Staff
from kefu.units import service as units
from kefu.validation import pydantic_errors
from kefu.web import nav

SESSION_COOKIE = "kefu_session"
CSRF_COOKIE = "kefu_csrf"  # double-submit token of signed-out forms (login, language)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LANG_COOKIE = "kefu_lang"  # read by kefu.i18n.middleware

# Endonyms: each language is named in itself, so they are deliberately not translated.
LANGUAGES = (("zh_CN", "中文"), ("en", "English"))

CSRF_REFUSED = N_("This form has expired or did not come from Kefu. Reload the page and try again.")

# Labels of stored codes; the codes themselves stay English in the database and the API.
ROLE_LABELS = {
    "agent": N_("Agent"),
    "supervisor": N_("Supervisor"),
    "manager": N_("Manager"),
    "admin": N_("Administrator"),
}
FUNCTION_LABELS = {
    "service": N_("Customer service"),
    "business": N_("Business management"),
    "marketing": N_("Marketing"),
    "technical": N_("Technical support"),
}
# Default level names (settings.unit_level_names); other configured names show as typed.
LEVEL_LABELS = (N_("province"), N_("city"), N_("county"))
NOTICES = {
    "created": N_("Created."),
    "saved": N_("Saved."),
    "moved": N_("Moved."),
    "deactivated": N_("Deactivated; signed out everywhere."),
    "reactivated": N_("Reactivated."),
    "password": N_("Password changed."),
    "revoked": N_("Token revoked."),
}


# --- templates ----------------------------------------------------------------------------


def tr(msgid: str, **params: Any) -> str:
    """Translate a catalogue msgid from Python ({name} placeholders), at render time."""
    text = i18n.gettext(msgid)
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def level(unit: Any) -> str:
    return tr(units.level_of(unit))


def when(value: Any, tz: str = "Asia/Shanghai", fmt: str = "short") -> str:
    return i18n.format_datetime(value, tz, fmt)


env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
# `_()` in templates: literal msgids with %(name)s placeholders (Jinja's newstyle gettext).
env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
)
env.globals.update(
    tr=tr,
    level=level,
    when=when,
    ROLE_LABELS=ROLE_LABELS,
    FUNCTION_LABELS=FUNCTION_LABELS,
    LANGUAGES=LANGUAGES,
    CSRF_FIELD=CSRF_FIELD,
)
# Macros as a global, so that a block rendered on its own (an HTMX fragment) sees them too.
env.globals["ui"] = env.get_template("_ui.html").module  # type: ignore[attr-defined]


# --- the request's transaction and the signed-in person -----------------------------------


def get_db(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed before the response leaves, else rolled back."""
    with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


Db = Annotated[Session, Depends(get_db, scope="function")]


@dataclass(frozen=True)
class Me:
    """The signed-in person, as pages need them."""

    viewer: Viewer
    id: int  # the staff id (a web session always belongs to a staff member)
    unit_id: int
    name: str
    csrf: str
    tz: str  # the zone of their unit, for times not tied to a unit


class LoginRequired(Exception):
    """Raised for a signed-out request to a page; answered with a redirect to /login."""


def request_context(request: Request) -> dict[str, str | None]:
    rid = (request.headers.get("X-Request-ID") or uuid.uuid4().hex)[:64]
    request.state.request_id = rid
    return {"request_id": rid, "remote_addr": request.client.host if request.client else None}


def signed_in(request: Request, db: Db) -> Me | None:
    secret = request.cookies.get(SESSION_COOKIE)
    found = auth.session_viewer(db, secret, **request_context(request)) if secret else None
    if found is None:  # unknown, expired, or the person was deactivated
        return None
    viewer, web_session = found
    assert viewer.staff_id is not None and viewer.unit_id is not None  # web: always a person
    person = db.get(Staff, viewer.staff_id)  # the session lookup loaded it: no query
    unit = units.get_unit(db, viewer, viewer.unit_id)
    assert person is not None
    me = Me(viewer, person.id, unit.id, person.display_name, web_session.csrf_token, unit.timezone)
    request.state.me = me
    # The language switch (cookie) wins; else the person's saved choice; else the browser's.
    request.state.locale = request.state.cookie_locale or viewer.locale or request.state.locale
    return me


MaybeMe = Annotated[Me | None, Depends(signed_in)]


def require_me(me: MaybeMe) -> Me:
    if me is None:
        raise LoginRequired()
    return me


CurrentMe = Annotated[Me, Depends(require_me)]


def require_role(me: Me, *roles: str) -> None:
    """Pages of one role: others learn nothing (404), as the scope rule wants."""
    if not me.viewer.has_role(*roles):
        raise NotFound()


# --- CSRF ---------------------------------------------------------------------------------


async def form_data(request: Request) -> FormData:
    return await request.form()


def verify_csrf(request: Request, form: FormData, me: Me | None) -> None:
    """Signed in: the session's token. Signed out: the double-submit cookie."""
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    expected = me.csrf if me is not None else request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(CSRF_REFUSED)


def checked_form(
    request: Request, me: CurrentMe, form: Annotated[FormData, Depends(form_data)]
) -> FormData:
    """The posted form of a signed-in person, after the CSRF check."""
    verify_csrf(request, form, me)
    return form


PostedForm = Annotated[FormData, Depends(checked_form)]


# --- responses ----------------------------------------------------------------------------


def is_htmx(request: Request) -> bool:
    """An HTMX request wants a fragment (boosted and history requests want the page)."""
    h = request.headers
    return (
        h.get("HX-Request") == "true"
        and h.get("HX-Boosted") != "true"
        and h.get("HX-History-Restore-Request") != "true"
    )


def secure_cookies(request: Request) -> bool:
    mode = get_settings().cookie_secure
    return mode == "true" or (mode == "auto" and request.url.scheme == "https")


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def _fragment(request: Request, template: Template, default: str) -> str | None:
    if not is_htmx(request):
        return None
    target = request.headers.get("HX-Target") or ""
    return target if target in template.blocks else default


def render(
    request: Request,
    name: str,
    ctx: dict[str, Any] | None = None,
    *,
    status: int = 200,
    fragment: str = "content",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page `name`, or for HTMX the block named by HX-Target (else `fragment`)."""
    me: Me | None = getattr(request.state, "me", None)
    # Set here, in the task that renders: a dependency's contextvars do not come back.
    i18n.set_locale(getattr(request.state, "locale", None) or i18n.DEFAULT_LOCALE)
    new_csrf = None
    csrf = me.csrf if me else request.cookies.get(CSRF_COOKIE)
    if not csrf:
        csrf = new_csrf = secrets.token_urlsafe(32)
    context: dict[str, Any] = {
        "request": request,
        "me": me,
        "csrf": csrf,
        "locale": i18n.get_locale(),
        "menu": nav.menu(me.viewer, request.url.path) if me else [],
        "here": here(request),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        **(ctx or {}),
    }
    template = env.get_template(name)
    block = _fragment(request, template, fragment)
    if block:
        body = "".join(template.blocks[block](template.new_context(context)))
    else:
        body = template.render(context)
    response = HTMLResponse(body, status_code=status, headers=headers)
    # Pages are personal and differ between fragment and page.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, HX-Request, HX-Target"
    if new_csrf:
        set_cookie(response, request, CSRF_COOKIE, new_csrf)
    return response


def redirect(request: Request, url: str, notice: str | None = None) -> Response:
    """After a change: 303 to a page (HTMX: a client-side redirect, so the page reloads)."""
    if notice:
        url += ("&" if "?" in url else "?") + urlencode({"notice": notice})
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def here(request: Request) -> str:
    """This page's local URL (path and query, less a one-time notice), e.g. for `next`."""
    return url_with(request)


def safe_next(value: str | None) -> str:
    """Only local paths: never another host, so a link cannot bounce people elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None or '' removes one)."""
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()  # a repeated parameter stays repeated
        if k not in changes and k != "notice"
    ]
    params += [(k, v) for k, v in changes.items() if v not in (None, "")]
    return request.url.path + (f"?{urlencode(params)}" if params else "")


# --- forms --------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def parse(schema: type[M], data: dict[str, Any]) -> M:
    """Form input through the same Pydantic schema as the API; errors name each field."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise Invalid(errors=pydantic_errors(exc.errors())) from exc


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def optional(value: str) -> str | None:
    """An empty optional field means "none"."""
    return value or None


@dataclass
class Form:
    """The values a form shows and the errors beside its fields (translated at render)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    key: str = ""  # prefixes element ids when a page holds several forms

    def __getitem__(self, name: str) -> Any:
        value = self.values.get(name)
        return "" if value is None else value

    def has(self, name: str, option: Any) -> bool:
        value = self.values.get(name)
        if isinstance(value, list | tuple | set | frozenset):
            return str(option) in {str(v) for v in value}
        return str(value) == str(option) if value is not None else False

    def errors_for(self, name: str) -> list[str]:
        return [tr(e.message, **e.params) for e in self.errors if _root(e.field) == name]

    def general_errors(self) -> list[str]:
        """Errors of fields this form does not show (e.g. a rule about the whole record)."""
        return [tr(e.message, **e.params) for e in self.errors if _root(e.field) not in self.values]


def _root(field_name: str) -> str:
    return field_name.split(".", 1)[0]


def all_rows(db: Session, stmt: Select[Any], key: Any, cap: int = 5000) -> list[Any]:
    """Every row of a (scoped) query, page by page, up to `cap` (for selects and trees)."""
    rows: list[Any] = []
    cursor = None
    while len(rows) < cap:
        page = paginate(db, stmt, key=key, limit=MAX_LIMIT, cursor=cursor)
        rows.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    return rows
