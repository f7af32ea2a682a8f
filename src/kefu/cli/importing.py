"""`kefu import customers FILE`: check (default) or apply an import file from the shell."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from kefu.i18n import LOCALES, N_, gettext, set_locale

import_app = typer.Typer(
    help="Import customers, contacts or revenue from CSV (UTF-8 or GBK) or Excel (.xlsx).",
    no_args_is_help=True,
)


class Kind(StrEnum):
    customers = "customers"
    contacts = "contacts"
    revenue = "revenue"


@import_app.callback()
def _group() -> None:
    """Import customers, contacts or revenue from CSV (UTF-8 or GBK) or Excel (.xlsx)."""


@import_app.command("customers")
def import_customers(
    file: Annotated[Path, typer.Argument(help="The CSV (UTF-8 or GBK) or .xlsx file.")],
    kind: Annotated[
        Kind, typer.Option(help="What the file holds: customers, contacts or revenue.")
    ] = Kind.customers,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Write the import (all or nothing); default: dry run."),
    ] = False,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Act as this staff member (their scope applies); default: the system.",
        ),
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the report: zh_CN or en.")] = "zh_CN",
) -> None:
    """Check an import file and report every bad row; with --apply, import it."""
    from kefu.cli import _factory, cli_viewer
    from kefu.customers import import_format, importing
    from kefu.db import unit_of_work
    from kefu.errors import DomainError

    set_locale(lang if lang in LOCALES else "zh_CN")
    if not file.is_file():
        _fail(gettext(N_("No such file: {file}"), file=str(file)))
    with file.open("rb") as fh:
        data = fh.read(import_format.MAX_BYTES + 1)

    try:
        with unit_of_work(_factory()) as session, _ProgressBar() as bar:
            viewer = cli_viewer()
            if as_user is not None:
                found = importing.acting_viewer(session, as_user)
                if found is None:
                    _fail(gettext(N_("No active staff member named {name}."), name=as_user))
                    return
                viewer = found
            report = importing.import_file(
                session,
                viewer,
                data,
                kind=kind.value,
                filename=file.name,
                dry_run=not apply,
                progress=bar.update,
            )
            if report.errors and apply:
                _print_report(report)
                raise typer.Exit(1)  # rolls the unit of work back (nothing was written)
    except DomainError as exc:
        parts = [f"{e.field}: {gettext(e.message, **e.params)}" for e in exc.errors]
        _fail("; ".join(parts) or gettext(exc.message, **exc.params))
        return
    _print_report(report)
    if report.errors:
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    for error in report.sorted_errors():
        where = error.field if not error.column or error.column == error.field else error.column
        typer.echo(
            gettext(
                N_("row {row}, {field}: {reason}"),
                row=error.row,
                field=where,
                reason=error.text(),
            )
        )
    bad_rows = len({e.row for e in report.errors})
    summary = gettext(
        N_(
            "{rows} rows: {created} to create, {updated} to update, {unchanged} unchanged, "
            "{bad} with errors."
        ),
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        bad=bad_rows,
    )
    typer.echo(summary)
    if report.applied:
        typer.echo(gettext(N_("Imported.")))
    elif report.dry_run:
        typer.echo(gettext(N_("Dry run: nothing was written. Add --apply to import.")))
    else:
        typer.echo(gettext(N_("Nothing was imported.")))


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


class _ProgressBar:
    """A rich progress bar on stderr, one task per phase (checking rows, writing)."""

    LABELS = {"check": N_("checking rows"), "write": N_("writing")}

    def __enter__(self) -> _ProgressBar:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.progress.__enter__()
        return self

    def update(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            label = gettext(self.LABELS.get(phase, phase))
            self.tasks[phase] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)
