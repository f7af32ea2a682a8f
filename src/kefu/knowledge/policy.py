"""Pure rules of standard phrases: which placeholders exist, finding and filling them."""

from __future__ import annotations

import re

# The placeholders a phrase may use, filled on the server from the ticket and the agent.
PLACEHOLDERS = (
    "customer",  # the customer's name
    "contact",  # the ticket's contact (else the customer's name)
    "ticket_number",
    "subject",
    "agent",  # who inserts the phrase
    "due",  # the resolution due time, in the handling unit's zone
    "unit",  # the handling unit
    "service_level",
)
# "{{" and "}}" stand for literal braces; "{anything else}" is a placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def placeholders(body: str) -> list[str]:
    """The placeholders a body uses, in order of first use."""
    seen: list[str] = []
    for m in _TOKEN.finditer(body):
        name = m.group(1)
        if name is not None and name not in seen:
            seen.append(name)
    return seen


def unknown(body: str) -> list[str]:
    return [p for p in placeholders(body) if p not in PLACEHOLDERS]


def fill(body: str, values: dict[str, str]) -> str:
    """The body with each placeholder replaced by its value (plain text)."""

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return values.get(m.group(1) or "", token)

    return _TOKEN.sub(one, body)
