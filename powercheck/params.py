"""A number with its provenance: used by the policy and by grid-model defaults."""

from __future__ import annotations

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


class Param(BaseModel):
    """One named parameter with unit, tag and source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Any
    unit: str = ""
    tag: Tag
    source: str = Field(min_length=3)

    @property
    def is_assumption(self) -> bool:
        """True for unverified recall ([R]) values."""
        return self.tag is Tag.RECALL
