"""Pure rules of the unit tree (no database, no clock)."""

from __future__ import annotations

from collections.abc import Sequence


def child_path(parent_path: str | None, unit_id: int) -> str:
    return f"{parent_path or '/'}{unit_id}/"


def would_cycle(unit_path: str, new_parent_path: str) -> bool:
    """Moving the unit at `unit_path` under `new_parent_path` would make it its own ancestor."""
    return new_parent_path.startswith(unit_path)


def level_name(depth: int, names: Sequence[str]) -> str:
    """The configured name of a depth; deeper than configured repeats the last name."""
    if not names:
        return str(depth + 1)
    return names[min(depth, len(names) - 1)]
