"""Where an indexed version can be queried: the indexer records it, serving routes by it."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt

_UNSAFE = re.compile(r"[^a-z0-9_]")


class Mode(StrEnum):
    """How a version got into OpenSearch."""

    SHADOW = "shadow"  # a fresh index per version, swapped in by alias
    INCREMENTAL = "incremental"  # two version slots per type in one live index


class Slot(StrEnum):
    """The two version slots an item document holds per type in incremental mode."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Slot:
        """The other slot."""
        return Slot.B if self is Slot.A else Slot.A


class IndexedLocation(BaseModel):
    """A fully indexed, search-visible version: which index and which fields hold it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    mode: Mode
    index: str
    vector_field: str
    version_field: str
    indexed_at: datetime
    item_count: StrictInt = Field(ge=0)


def field_stem(type_name: str) -> str:
    """A type name made safe for an OpenSearch field name ('.' would create object paths)."""
    return "emb_" + _UNSAFE.sub("_", type_name.lower())


def vector_field(type_name: str, slot: Slot) -> str:
    """The knn_vector field of a type's slot."""
    return f"{field_stem(type_name)}_{slot.value}"


def version_field(type_name: str, slot: Slot) -> str:
    """The keyword field naming the version whose vector sits in a type's slot."""
    return f"{field_stem(type_name)}_{slot.value}_version"


def items_alias(index_prefix: str, type_name: str) -> str:
    """Alias serving queries for a shadow-built type."""
    return f"{index_prefix}-items-{_UNSAFE.sub('-', type_name.lower())}"


def shadow_index(index_prefix: str, type_name: str, version: str) -> str:
    """The index a shadow build creates for one version."""
    return f"{items_alias(index_prefix, type_name)}-{version.lower()}"


def live_index(index_prefix: str) -> str:
    """The one live index incremental mode keeps, holding every incremental type's slots."""
    return f"{index_prefix}-items-live"


def foreign_location(index_prefix: str, type_name: str, location: IndexedLocation) -> str | None:
    """Why a recorded location is not where our indexer puts `type_name` (None when it is).

    Readers route searches by it (serving's `/{index}/_search`), so a location naming any other index or
    field (another prefix's, another type's, a path with `/` or `?`) is refused where it is read.
    """
    if location.mode is Mode.SHADOW:
        expected = shadow_index(index_prefix, type_name, location.version)
    else:
        expected = live_index(index_prefix)
    if location.index != expected:
        return f"index {location.index!r} of version {location.version!r} is not {expected!r}"
    fields = {(vector_field(type_name, slot), version_field(type_name, slot)) for slot in Slot}
    if (location.vector_field, location.version_field) not in fields:
        return (
            f"fields {location.vector_field!r}/{location.version_field!r} of version {location.version!r} "
            f"are not a slot of type {type_name!r}"
        )
    return None
