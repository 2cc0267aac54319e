"""A number with its provenance: used by the policy and by grid-model defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Tag(StrEnum):
    """Where a number comes from."""

    SOURCED = "S"
    """Seen in the cited source."""
    SOURCED_PARTIAL = "S-partial"
    """The source confirms part of the statement."""
    DERIVED = "D"
    """Arithmetic on sourced numbers."""
    RECALL = "R"
    """Unsourced recall: not verified. Decisions that use it name it."""
    POLICY = "P"
    """A choice of the grid owner."""


@dataclass(frozen=True)
class Range:
    """A closed or half-open numeric interval; ``lo_open``/``hi_open`` exclude the bound."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


class Group(StrEnum):
    """What kind of limit or number a policy parameter is (``powercheck policy`` lists them apart)."""

    LEGAL = "legal"
    """A limit set by regulation (FoL) or the voltage-quality standard it harmonises with (EN 50160)."""
    PLANNING = "planning"
    """The grid owner's planning values and rules (what it auto-approves, its margins, its workflow)."""
    EMISSION = "emission"
    """An emission limit of one appliance or one customer (equipment standards, emission shares)."""
    PROTECTION = "protection"
    """Fuse and short-circuit data (IEC 60269, IEC 60909) and selectivity."""
    MODEL = "model"
    """Model constants and assumptions: defaults for missing data, coincidence, spectra, background levels."""


class Param(BaseModel):
    """One named parameter with unit, tag and source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Any
    unit: str = ""
    tag: Tag
    source: str = Field(min_length=3)
    group: Group | None = None
    """Kind of limit (policy parameters; None for grid-model defaults)."""

    @property
    def is_assumption(self) -> bool:
        """True for unverified recall ([R]) values."""
        return self.tag is Tag.RECALL
