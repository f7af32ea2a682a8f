"""The left navigation. Each capability appends its entries to NAV (and SECTIONS if new).

An entry is shown to people holding one of its roles (admins hold every role); the page
itself still checks: hiding a link is no access control.
"""

from __future__ import annotations

from dataclasses import dataclass

from kefu.i18n import N_
from kefu.scope import Viewer


@dataclass(frozen=True)
class Section:
    key: str
    label: str  # msgid


@dataclass(frozen=True)
class NavItem:
    section: str
    label: str  # msgid
    url: str
    roles: tuple[str, ...] = ()  # empty: everyone signed in
    accesskey: str | None = None  # browsers' Alt(+Shift)+key


SECTIONS: list[Section] = [
    Section("workspace", N_("Workspace")),
    Section("customers", N_("Customers")),
    Section("quality", N_("Service quality")),
    Section("organisation", N_("Organisation")),
    Section("admin", N_("Administration")),
]

NAV: list[NavItem] = [
    NavItem("workspace", N_("Home"), "/", accesskey="h"),
    NavItem("workspace", N_("Ticket queues"), "/tickets", accesskey="q"),
    NavItem("workspace", N_("Standard phrases"), "/phrases"),
    NavItem("workspace", N_("Return visits"), "/visits", accesskey="r"),
    NavItem("quality", N_("Satisfaction"), "/satisfaction", accesskey="m"),
    NavItem("quality", N_("Complaints"), "/complaints", roles=("supervisor", "manager")),
    NavItem("quality", N_("Loyalty"), "/loyalty", roles=("supervisor", "manager")),
    NavItem("quality", N_("Recovery tasks"), "/recovery", roles=("supervisor", "manager")),
    NavItem("organisation", N_("Units"), "/units", accesskey="u"),
    NavItem("organisation", N_("Staff"), "/staff", accesskey="s"),
    NavItem("admin", N_("Audit log"), "/audit", roles=("admin",), accesskey="l"),
    NavItem("admin", N_("API tokens"), "/tokens", roles=("admin",), accesskey="k"),
    NavItem("customers", N_("Customer archives"), "/customers", accesskey="c"),
    NavItem("customers", N_("Import"), "/customers/import", roles=("supervisor", "manager")),
    NavItem("admin", N_("Tiering rules"), "/tiering", roles=("admin",), accesskey="t"),
    NavItem("admin", N_("Service levels"), "/service-levels", roles=("admin",), accesskey="v"),
    NavItem("admin", N_("Survey templates"), "/survey-templates", roles=("admin",)),
    NavItem("workspace", N_("Notices"), "/notices", accesskey="n"),
    NavItem("organisation", N_("Group robots"), "/robots", roles=("manager", "supervisor")),
    NavItem("admin", N_("Webhooks"), "/webhooks", roles=("admin",)),
    NavItem("admin", N_("Delivery log"), "/deliveries", roles=("admin",)),
    NavItem("admin", N_("Ticket fields"), "/ticket-fields", roles=("admin",)),
    NavItem("workspace", N_("Held mail"), "/mail/held", roles=("agent", "supervisor", "manager")),
    NavItem("admin", N_("Mailboxes"), "/mailboxes", roles=("admin",)),
    NavItem("admin", N_("Business calendars"), "/calendars", roles=("manager",)),
    NavItem("admin", N_("Routing rules"), "/routing", roles=("admin",)),
    NavItem("admin", N_("Mail templates"), "/mail/templates", roles=("admin",)),
]


@dataclass(frozen=True)
class MenuEntry:
    item: NavItem
    current: bool


def _matches(url: str, path: str) -> bool:
    return path == url if url == "/" else path == url or path.startswith(url.rstrip("/") + "/")


def menu(viewer: Viewer, path: str) -> list[tuple[Section, list[MenuEntry]]]:
    """The sections and entries this viewer sees; the longest matching entry is current."""
    shown = [i for i in NAV if not i.roles or viewer.has_role(*i.roles)]
    best = max((i for i in shown if _matches(i.url, path)), key=lambda i: len(i.url), default=None)
    out = []
    for section in SECTIONS:
        entries = [MenuEntry(i, i is best) for i in shown if i.section == section.key]
        if entries:
            out.append((section, entries))
    return out
