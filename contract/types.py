"""Embedding types: an algorithm plus its configuration, with a family, dimension and similarity."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DIM = 4096


class Family(StrEnum):
    """How users and items get their vectors."""

    DIRECT_DIRECT = "direct-direct"  # users and items embedded directly
    INDIRECT_DIRECT = "indirect-direct"  # items direct; a user is a weighted sum of attribute vectors
    INDIRECT_INDIRECT = "indirect-indirect"  # users and items are weighted sums of attribute vectors


class Similarity(StrEnum):
    """The model's similarity; the search layer maps it to an engine space type."""

    DOT = "dot"
    COSINE = "cosine"
    L2 = "l2"


class EmbeddingType(BaseModel):
    """A registered embedding type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="e.g. als-d64-reg0.05")
    family: Family
    dim: int = Field(ge=1, le=MAX_DIM)
    similarity: Similarity
    attribute_namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces of attribute vectors (indirect families), e.g. item, tag, author."
    )
    description: str = Field(default="", max_length=500)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TYPE_NAME.match(value):
            raise ValueError(f"type name {value!r} must match {TYPE_NAME.pattern}")
        return value

    @field_validator("attribute_namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ns in value:
            if not NAMESPACE.match(ns):
                raise ValueError(f"attribute namespace {ns!r} must match {NAMESPACE.pattern}")
        if len(set(value)) != len(value):
            raise ValueError("attribute_namespaces must be distinct")
        return value

    @model_validator(mode="after")
    def _family_needs_namespaces(self) -> EmbeddingType:
        if self.family is not Family.DIRECT_DIRECT and not self.attribute_namespaces:
            raise ValueError(f"family {self.family} needs at least one attribute namespace")
        if self.family is Family.DIRECT_DIRECT and self.attribute_namespaces:
            raise ValueError("family direct-direct takes no attribute namespaces")
        return self
