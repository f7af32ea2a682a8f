"""The `kefu` command. Each command is one unit of work around one service call."""

from __future__ import annotations

import contextlib
import gc
import getpass
import os
import sys
import time
from typing import Annotated

import typer

from kefu import schema
from kefu.cli.importing import import_app
from kefu.config import get_settings
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.scope import Viewer

app = typer.Typer(
    help="Kefu (客服): customer service for organisations with a hierarchy of units.\n\n"
    "Settings come from KEFU_* environment variables (see docs/configuration.md); "
    "the database defaults to a SQLite file under ./var/.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="Long-lived API tokens for integrations.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(import_app, name="import")


def cli_viewer() -> Viewer:
    """The CLI acts as the system, signed in the audit log with the OS user."""
    user = os.environ.get("USER") or getpass.getuser() or "unknown"
    return Viewer(
        staff_id=None,
        username=f"cli:{user}",
        unit_id=None,
        unit_path=None,
        roles=frozenset({"admin"}),
        channel="cli",
    )


def _factory():  # type: ignore[no-untyped-def]
    return make_sessionmaker(make_engine(get_settings().database_url))


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def init() -> None:
    """Create the database schema, or upgrade it to this version. Safe to run again."""
    url = get_settings().database_url
    started = time.monotonic()
    schema.upgrade(url)
    typer.echo(
        f"schema up to date at revision {schema.head_revision()} "
        f"({time.monotonic() - started:.1f}s): {_safe_url(url)}"
    )


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Login name of the administrator.")] = "admin",
    password: Annotated[
        str | None, typer.Option(help="Password (at least 8 characters); asked for when left out.")
    ] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the UI.")] = "管理员",
    unit_name: Annotated[
        str, typer.Option(help="Name of the top unit, created when the tree is still empty.")
    ] = "总部",
    region_code: Annotated[str, typer.Option(help="Region code of that top unit.")] = "100000",
) -> None:
    """Create an administrator (and the top unit if there is none yet)."""
    from pydantic import ValidationError

    from kefu.staff import service as staff_service
    from kefu.staff.schemas import StaffCreate
    from kefu.units import service as unit_service
    from kefu.units.schemas import UnitCreate

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    schema.upgrade(get_settings().database_url)
    viewer = cli_viewer()
    try:
        with unit_of_work(_factory()) as session:
            top = unit_service.first_top_unit(session)
            if top is None:
                top = unit_service.create_unit(
                    session, viewer, UnitCreate(name=unit_name, region_code=region_code)
                )
            staff = staff_service.create_staff(
                session,
                viewer,
                StaffCreate(
                    username=username,
                    display_name=display_name,
                    unit_id=top.id,
                    roles=["admin"],
                    password=password,
                ),
            )
            typer.echo(f"administrator {staff.username} created in unit {top.name}")
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    except Exception as exc:  # domain errors carry field names
        _fail(_describe(exc))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[
        bool, typer.Option(help="Run the background worker inside this process (embedded mode).")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Web processes answering requests (one per CPU core for a busy API); "
            "the embedded worker then runs in the supervising process.",
        ),
    ] = 1,
) -> None:
    """Start the web app and the API (and, by default, the worker)."""
    import uvicorn

    from kefu.app import create_app
    from kefu.jobs.worker import start_in_thread
    from kefu.web_processes import Supervisor, reuse_port_supported

    settings = get_settings()
    schema.upgrade(settings.database_url)
    run = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if workers > 1:
        # Each web process builds its own app (kefu.app.served_app) from the same KEFU_*
        # settings; this process supervises them and runs the embedded worker, if any.
        if worker and settings.embedded_worker:
            factory = make_sessionmaker(make_engine(settings.database_url))
            start_in_thread(factory, settings.worker_interval_seconds)
        supervisor = Supervisor(host, port, workers) if reuse_port_supported() else None
        if supervisor is not None:
            try:
                supervisor.check_port()
            except OSError as exc:  # the port is taken, say
                _fail(f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}")
        typer.echo(f"Kefu listening on http://{host}:{port}/ ({workers} processes)")
        if supervisor is not None:
            raise typer.Exit(supervisor.run())
        uvicorn.run("kefu.app:served_app", factory=True, workers=workers, **run)  # type: ignore[arg-type]
        return
    application = create_app()
    # Objects made at import live forever; freezing them spares every full collection
    # from scanning them again (long pauses otherwise show up as p99 latency).
    gc.collect()
    gc.freeze()
    if worker and settings.embedded_worker:
        start_in_thread(application.state.sessionmaker, settings.worker_interval_seconds)
    typer.echo(f"Kefu listening on http://{host}:{port}/")
    uvicorn.run(application, **run)  # type: ignore[arg-type]


@app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option(help="Run every job once and exit.")] = False,
) -> None:
    """Run the background jobs (one or more workers per database)."""
    from kefu.jobs.worker import run_forever, run_once

    settings = get_settings()
    factory = _factory()
    if once:
        typer.echo(run_once(factory))
        return
    typer.echo(f"worker running every {settings.worker_interval_seconds}s; Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        run_forever(factory, settings.worker_interval_seconds)


@app.command()
def demo(
    customers: Annotated[
        int, typer.Option(help="How many customers to make (groups included).")
    ] = 5200,
    tickets: Annotated[int, typer.Option(help="How many tickets over the last year.")] = 52000,
) -> None:
    """Fill the database with a realistic demo organisation (runs `init` first):
    units and staff, customers with contacts and three years of revenue, tiered, custom
    ticket fields, a year of tickets with their return visits, survey answers and
    complaints, standard phrases and shared views, and a few contacts who sign in to the
    customer portal."""
    from kefu.demo import console as demo_console
    from kefu.demo import customers as demo_customers
    from kefu.demo import fields as demo_fields
    from kefu.demo import organisation
    from kefu.demo import portal as demo_portal
    from kefu.demo import satisfaction as demo_satisfaction
    from kefu.demo import tickets as demo_tickets

    settings = get_settings()
    schema.upgrade(settings.database_url)

    def say(message: str) -> None:
        typer.echo(f"  {message}")

    with unit_of_work(_factory()) as session:
        counts = organisation.build(session, cli_viewer(), progress=say)
    typer.echo(f"demo organisation: {counts['units']} units, {counts['staff']} staff")
    with unit_of_work(_factory()) as session:
        made = demo_customers.build(session, cli_viewer(), count=customers, progress=say)
    typer.echo(
        f"demo customers: {made['customers']} customers, {made['contacts']} contacts, "
        f"{made['revenue_records']} revenue records"
    )
    with unit_of_work(_factory()) as session:
        demo_fields.build(session, cli_viewer(), progress=say)
    with unit_of_work(_factory()) as session:
        service = demo_tickets.build(session, cli_viewer(), count=tickets, progress=say)
    typer.echo(f"demo tickets: {service['tickets']} tickets, {service['events']} events")
    with unit_of_work(_factory()) as session:
        after = demo_satisfaction.build(session, cli_viewer(), progress=say)
    typer.echo(
        f"demo after-sales: {after['visits']} return visits, {after['answers']} survey "
        f"answers, {after['complaints']} complaints"
    )
    with unit_of_work(_factory()) as session:
        logins = demo_portal.build(session, cli_viewer(), progress=say)
    for email in logins:
        typer.echo(f"customer portal (/portal): sign in as {email} / {organisation.DEMO_PASSWORD}")
    with unit_of_work(_factory()) as session:
        console = demo_console.build(session, cli_viewer(), progress=say)
    typer.echo(f"demo console: {console['phrases']} phrases, {console['views']} shared views")
    typer.echo(
        f"sign in as admin / {organisation.DEMO_PASSWORD} (every demo account has this password)"
    )


@app.command()
def retier(
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply the proposals (default: dry run).")
    ] = False,
    run_date: Annotated[
        str | None, typer.Option("--date", help="Run as of this day (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Re-tier every customer: tier, service level and owning unit by the active ruleset."""
    from datetime import date

    from kefu.tiering import service as tiering

    day = None
    if run_date:
        try:
            day = date.fromisoformat(run_date)
        except ValueError:
            _fail(f"--date: not a date (YYYY-MM-DD): {run_date!r}")
    with unit_of_work(_factory()) as session:
        typer.echo("computing proposals …")
        run = tiering.start_run(session, cli_viewer(), day)
        summary = run.summary
        typer.echo(f"run #{run.id} as of {run.run_date}: {summary['customers']} customers")
        typer.echo("  tiers:  " + "  ".join(f"{k} {v}" for k, v in summary["tiers"].items()))
        typer.echo("  levels: " + "  ".join(f"{k} {v}" for k, v in summary["levels"].items()))
        for move in summary["tier_moves"]:
            typer.echo(f"  {move['from'] or '-'} → {move['to']}: {move['count']}")
        typer.echo(f"  ownership moves: {summary['ownership_moves']}")
        if apply:
            tiering.apply_run(session, cli_viewer(), run.id)
    hint = "apply it with `kefu retier --apply`"
    typer.echo(f"run #{run.id} applied" if apply else f"dry run only; {hint}")


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Option(help="Staff member the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'CRM sync'.")],
    days: Annotated[
        int | None, typer.Option(help="Expire after this many days (default never).")
    ] = None,
) -> None:
    """Create a long-lived integration token. The token is printed once; keep it safe."""
    from datetime import timedelta

    from kefu.auth import service as auth
    from kefu.clock import now
    from kefu.staff import service as staff_service

    with unit_of_work(_factory()) as session:
        staff = staff_service.active_by_username(session, username)
        if staff is None:
            _fail(f"no active staff member named {username!r}")
            return
        expires = now() + timedelta(days=days) if days else None
        plain, token = auth.issue_token(
            session, cli_viewer(), staff, kind="integration", name=name[:100], expires_at=expires
        )
    typer.echo(plain)
    typer.echo(
        f"token #{token.id} for {staff.username}"
        + (f", expires {expires:%Y-%m-%d}" if expires else ", no expiry"),
        err=True,
    )


@token_app.command("list")
def token_list() -> None:
    """List integration tokens (never their values)."""
    from kefu.auth import service as auth

    with unit_of_work(_factory()) as session:
        for t in auth.list_tokens(session, cli_viewer()):
            state = "revoked" if t.revoked_at else "active"
            typer.echo(f"#{t.id}\t{t.prefix}…\t{t.staff.username}\t{t.name}\t{state}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's number (#id).")],
) -> None:
    """Revoke an integration token at once."""
    from kefu.auth import service as auth

    try:
        with unit_of_work(_factory()) as session:
            auth.revoke_token(session, cli_viewer(), token_id)
    except Exception as exc:
        _fail(_describe(exc))
    typer.echo(f"token #{token_id} revoked")


def _describe(exc: Exception) -> str:
    from kefu.errors import DomainError
    from kefu.i18n import gettext

    if isinstance(exc, DomainError):
        parts = [f"{e.field}: {gettext(e.message, **e.params)}" for e in exc.errors]
        return "; ".join(parts) or gettext(exc.message, **exc.params)
    raise exc


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
