"""The tiering ruleset: its shape, its defaults (DESIGN.md) and the checks made at save time.

Rules are tried in order; the first condition that holds decides the tier, and
"<tier>:<condition>" is stored as the rule that fired, so the UI can say why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from kefu.i18n import N_
from kefu.validation import Input, KefuValueError

Condition = Literal[
    "important",  # flagged important (重要客户)
    "group_head",  # the head office of a group customer
    "top_band",  # cumulative revenue share above it < top_share
    "middle_band",  # … < middle_share
    "branch",  # a branch of a group customer
    "new",  # first revenue within `new_months`
    "potential",  # marked potential
    "always",  # catch-all
]
Tier = Literal["A", "B", "C"]
Level = Literal["5A", "4A", "3A", "2A", "1A"]
Share = Annotated[Decimal, Field(gt=0, le=1, decimal_places=4)]


class Rule(Input):
    tier: Tier
    any: list[Condition] = Field(min_length=1, max_length=8)


class LevelMap(Input):
    a_important: Level = "5A"
    a: Level = "4A"
    b: Level = "3A"
    c_upper: Level = "2A"  # C customers with revenue at or above the C median
    c_lower: Level = "1A"


class Ruleset(Input):
    window_months: Annotated[int, Field(ge=1, le=60)] = 12
    new_months: Annotated[int, Field(ge=1, le=60)] = 12
    top_share: Share = Decimal("0.70")
    middle_share: Share = Decimal("0.90")
    rules: list[Rule] = Field(min_length=1, max_length=20)
    levels: LevelMap = Field(default_factory=LevelMap)
    province_groups: bool = True  # group heads with branches in several cities → province

    @model_validator(mode="after")
    def _sound(self) -> Ruleset:
        if self.top_share >= self.middle_share:
            raise KefuValueError(
                N_("The bands overlap: the top band's share must be below the middle band's."),
                field="middle_share",
            )
        conditions = [c for r in self.rules for c in r.any]
        if "always" not in conditions:
            raise KefuValueError(
                N_("The rules do not cover every customer: end with a rule for 'always'."),
                field="rules",
            )
        last_always = max(i for i, r in enumerate(self.rules) if "always" in r.any)
        if last_always != len(self.rules) - 1 or self.rules[-1].any != ["always"]:
            raise KefuValueError(
                N_("Rules after an 'always' rule could never fire; 'always' must come last."),
                field="rules",
            )
        if len(conditions) != len(set(conditions)):
            raise KefuValueError(N_("A condition may appear in one rule only."), field="rules")
        if "middle_band" in conditions and "top_band" not in conditions:
            raise KefuValueError(N_("A middle band needs a top band above it."), field="rules")
        return self


DEFAULT = Ruleset(
    rules=[
        Rule(tier="A", any=["important", "group_head", "top_band"]),
        Rule(tier="B", any=["branch", "middle_band", "new", "potential"]),
        Rule(tier="C", any=["always"]),
    ]
)


def level_for(tier: str, important: bool, upper_c: bool, levels: LevelMap) -> str:
    """The service level a tier (and flags) entitles to."""
    if tier == "A":
        return levels.a_important if important else levels.a
    if tier == "B":
        return levels.b
    return levels.c_upper if upper_c else levels.c_lower
