"""Every setting and every CLI command is documented (the test fails when one is not)."""

from __future__ import annotations

from pathlib import Path

from kefu.cli import app as cli_app
from kefu.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    missing = [
        f"KEFU_{name.upper()}"
        for name in Settings.model_fields
        if f"`KEFU_{name.upper()}`" not in text
    ]
    assert missing == []


def test_every_cli_command_is_documented():
    import typer.main

    text = (DOCS / "cli.md").read_text()
    group = typer.main.get_command(cli_app)
    names = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        names += [f"kefu {name} {sub}" for sub in subs] if subs else [f"kefu {name}"]
    missing = [n for n in names if f"`{n}" not in text]
    assert missing == []
    for cmd in group.commands.values():  # type: ignore[attr-defined]
        assert cmd.help, f"{cmd.name} has no --help text"
