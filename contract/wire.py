"""Models that cross process boundaries over HTTP (orchestrator <-> indexer, serving)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, field_validator, model_validator

from contract.errors import ErrorName
from contract.indexing import IndexedLocation
from contract.manifest import Manifest
from contract.types import EmbeddingType
from contract.versions import VERSION_ID_PATTERN

# No "/": user ids travel in the orchestrator's paths, where a decoded "/" would name another route.
ENTITY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$")
ATTRIBUTE_ID_SCHEMA = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*:[A-Za-z0-9_.:@+-]*$"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: every service refuses a longer request body with 413 BodyTooLarge
# Both services close a keep-alive connection idle this long (service.server); our HTTP clients drop theirs
# sooner, so a request is never sent on a connection the server is closing. The reset that would follow is
# retried by aiohttp for idempotent methods only: a POST (users:aggregate, items:batch, a recommendation)
# would fail, as one of the serving benchmark's did.
SERVER_KEEP_ALIVE_SECONDS = 5
CLIENT_KEEP_ALIVE_SECONDS = 4.0
# Bounded by time, not by the body limit: at 5,000 attributes eight concurrent requests (serving parses the
# list, the orchestrator parses and aggregates it) outlasted serving's 0.5 s orchestrator budget and opened
# its breaker for every other client; 1,000 at their longest take 175 KB and stay well inside it
# (tests/serving/test_serving_isolation.py).
MAX_ATTRIBUTES = 1_000
MAX_BATCH_ITEMS = 1_000
MAX_SAMPLE_USERS = 1_000  # user vectors per GET .../users:sample
# Item ids excluded from one search: a request's own exclude_item_ids, and also the cap on everything
# serving excludes for it (those ids first, then the items named as attributes, then the seen items, newest
# first); seen items past it may be recommended again.
MAX_EXCLUDED = 10_000
MAX_WEIGHT = 1e6


class ErrorBody(BaseModel):
    """Every error any Lockstep service returns."""

    error: ErrorName = Field(description="What kind of error, e.g. UnknownType (contract.errors).")
    detail: str = Field(description="What went wrong and which field.")


class WeightedAttribute(BaseModel):
    """An attribute id ('namespace:id', e.g. 'item:42', 'tag:fantasy') with its weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The schema's pattern says what the validator below checks: ENTITY_ID with a ':' after the first
    # character (pydantic's own `pattern=` could not say both).
    id: str = Field(max_length=128, json_schema_extra={"pattern": ATTRIBUTE_ID_SCHEMA})
    weight: StrictFloat = Field(default=1.0, description="A JSON number (not a string, not a boolean).")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if ":" not in value or not ENTITY_ID.fullmatch(value):
            raise ValueError(f"attribute id {value!r} must be 'namespace:id' ({ENTITY_ID.pattern})")
        return value

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0 or value > MAX_WEIGHT:
            raise ValueError(f"weight {value!r} must be finite, > 0 and <= {MAX_WEIGHT:g}")
        return value


class VersionInfo(BaseModel):
    """A published version as listed by the orchestrator."""

    version: str
    seq: int
    frame_start: datetime
    frame_end: datetime
    counts: dict[str, int]
    created_at: datetime

    @classmethod
    def of(cls, manifest: Manifest) -> VersionInfo:
        """Summarise a manifest."""
        return cls(
            version=manifest.version,
            seq=manifest.seq,
            frame_start=manifest.frame_start,
            frame_end=manifest.frame_end,
            counts=manifest.counts.model_dump(),
            created_at=manifest.created_at,
        )


class TypeInfo(BaseModel):
    """GET /v1/embedding-types/{type}."""

    type: EmbeddingType
    latest: str | None
    in_use: str | None
    published: list[VersionInfo] = Field(description="Oldest first.")
    indexed: list[IndexedLocation]

    def in_use_location(self) -> IndexedLocation | None:
        """Where the in_use version is indexed (None before there is one)."""
        return next((loc for loc in self.indexed if loc.version == self.in_use), None)


class UserVector(BaseModel):
    """A user's vector together with the version it belongs to (read consistently)."""

    type_name: str
    version: str
    dim: int
    vector: list[float]
    source: Literal["direct", "aggregate"]
    used: list[str] = Field(default_factory=list, description="Attributes found (aggregate only).")
    missing: list[str] = Field(
        default_factory=list, description="Attributes without a vector (aggregate only)."
    )


class AggregateRequest(BaseModel):
    """POST /v1/embedding-types/{type}/users:aggregate: explicit attributes, or a user's stored profile."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["attributes"], "properties": {"attributes": {"type": "array"}}},
                {"required": ["user_id"], "properties": {"user_id": {"type": "string"}}},
            ]
        },
    )

    attributes: list[WeightedAttribute] | None = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    user_id: str | None = Field(default=None, max_length=128, pattern=ENTITY_ID.pattern)
    normalize: StrictBool = Field(default=True, description="Scale the sum to unit length.")

    @model_validator(mode="after")
    def _one_source(self) -> AggregateRequest:
        if (self.attributes is None) == (self.user_id is None):
            raise ValueError("give exactly one of 'attributes' or 'user_id'")
        if self.attributes is not None and not self.attributes:
            raise ValueError("attributes: at least one attribute is required")
        return self


class ItemsBatchRequest(BaseModel):
    """POST /v1/embedding-types/{type}/items:batch."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_ID_PATTERN)
    item_ids: list[Annotated[str, Field(max_length=128, pattern=ENTITY_ID.pattern)]] = Field(
        min_length=1, max_length=MAX_BATCH_ITEMS, json_schema_extra={"uniqueItems": True}
    )
    attributes: dict[str, list[WeightedAttribute]] = Field(
        default_factory=dict,
        description="Per item id: aggregate its vector from these attributes when the version has none.",
    )
    normalize: StrictBool = Field(default=False, description="Scale aggregated item vectors to unit length.")


class UsersSample(BaseModel):
    """A random sample of one version's user vectors: `vectors` as in ItemsBatchResponse, a row per id."""

    type_name: str
    version: str
    dim: int
    ids: list[str]
    vectors: str


class ItemsBatchResponse(BaseModel):
    """Item vectors of one version: `vectors` is base64 of float32 LE rows, one per id in `ids`."""

    type_name: str
    version: str
    dim: int
    ids: list[str]
    vectors: str
    aggregated: list[str] = Field(default_factory=list, description="Ids whose vector was aggregated.")
    missing: list[str] = Field(description="Requested ids with no vector of this version.")


class InUseUpdate(BaseModel):
    """PUT /v1/embedding-types/{type}/in-use: compare-and-set."""

    model_config = ConfigDict(extra="forbid")

    expected: str | None = Field(
        pattern=VERSION_ID_PATTERN,
        description="The in_use version the caller believes is current (null: none).",
    )
    version: str = Field(pattern=VERSION_ID_PATTERN)
    reason: str = Field(default="", max_length=500)


class RollbackRequest(BaseModel):
    """POST /v1/embedding-types/{type}/rollback."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)
    expected: str | None = Field(
        default=None,
        pattern=VERSION_ID_PATTERN,
        description="The in_use version the caller rolls back from: when in_use is another, 409 "
        "InUseConflict and nothing moves, so a retry after a lost answer never rolls back twice. Omitted: "
        "from whatever is in use.",
    )


class InUseChange(BaseModel):
    """One entry of the in_use audit trail."""

    at: datetime
    actor: str
    role: str
    from_version: str | None
    to_version: str
    reason: str


# --- the item catalog (orchestrator: /v1/items) ----------------------------------------------------------

MAX_CATALOG_BATCH = 1_000  # items (upserts and deletes together) per POST /v1/items:batch


class CatalogBatchRequest(BaseModel):
    """POST /v1/items:batch: items to create or replace (whole) and ids to delete; all checked first."""

    model_config = ConfigDict(extra="forbid")

    upsert: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_CATALOG_BATCH,
        description="Whole items of the item schema, each with its item_id.",
    )
    delete: list[Annotated[str, Field(max_length=128, pattern=ENTITY_ID.pattern)]] = Field(
        default_factory=list, max_length=MAX_CATALOG_BATCH, description="Ids of items to delete."
    )

    @model_validator(mode="after")
    def _bounded(self) -> CatalogBatchRequest:
        if not self.upsert and not self.delete:
            raise ValueError("give at least one item in upsert or one id in delete")
        if len(self.upsert) + len(self.delete) > MAX_CATALOG_BATCH:
            raise ValueError(f"upsert and delete together hold more than {MAX_CATALOG_BATCH} entries")
        return self


class CatalogBatchResponse(BaseModel):
    """What a batch wrote."""

    upserted: int = Field(description="Items created or replaced.")
    deleted: int = Field(description="Items deleted (ids of no stored item are not counted).")


class CatalogDeleted(BaseModel):
    """DELETE /v1/items/{item_id}."""

    item_id: str
    deleted: bool
