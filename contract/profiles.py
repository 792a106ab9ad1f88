"""User profiles: a user's recent interactions with weights (raw data, not a versioned embedding)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Interaction(BaseModel):
    """One item a user interacted with, and how much it counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str = Field(min_length=1, max_length=128)
    weight: float = Field(gt=0, le=1e6)


class Profile(BaseModel):
    """A user's recent interactions, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    interactions: tuple[Interaction, ...]
