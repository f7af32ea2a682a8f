"""Pure rules of complaints: severity, repeats, who may approve which compensation."""

from __future__ import annotations

from decimal import Decimal

PRIORITY_SEVERITY = {"urgent": 3, "high": 2, "normal": 1, "low": 1}
SEVERITY_PRIORITY = {3: "urgent", 2: "high", 1: "normal"}


def raised(severity: int) -> int:
    """A repeat complaint is one step more severe (at most critical)."""
    return min(3, severity + 1)


def authority(roles: frozenset[str], limits: dict[str, Decimal]) -> Decimal | None:
    """The largest compensation these roles may approve; None: no limit (administrators)."""
    if "admin" in roles:
        return None
    found = [limits[r] for r in roles if r in limits]
    return max(found) if found else Decimal(0)


def needs_approval(amount: Decimal | None, threshold: Decimal) -> bool:
    return amount is not None and amount > threshold
