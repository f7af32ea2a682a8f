"""Pure rules of the unit tree (no database, no clock)."""

from __future__ import annotations

from collections.abc import Sequence


def level_name(depth: int, names: Sequence[str]) -> str:
    """The configured name of a depth; deeper than configured repeats the last name."""
    if not names:
        return str(depth + 1)
    return names[min(depth, len(names) - 1)]
