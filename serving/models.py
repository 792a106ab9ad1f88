"""Request and response models of the serving API (pydantic at the HTTP edge)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from contract.filters import Filter, FilterNode, Partitions, filter_to_json, scoped
from contract.types import TYPE_NAME_PATTERN
from contract.wire import ENTITY_ID, MAX_ATTRIBUTES, MAX_EXCLUDED, WeightedAttribute

MAX_K = 1000

EntityId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=ENTITY_ID.pattern)]
TypeName = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=TYPE_NAME_PATTERN)]


class RecommendRequest(BaseModel):
    """POST /v1/recommend.

    `attributes` give the user vector directly (aggregated by the orchestrator); `user_id` alone looks the
    user up. With both, the attributes make the vector and the user id drives A/B assignment and
    exclude-seen. An unknown user (no vector, nothing to aggregate) is not an error: the response is the
    fallback list, every item labelled `scorer: "fallback"` with the reason under explain.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["user_id"], "properties": {"user_id": {"type": "string"}}},
                {"required": ["attributes"], "properties": {"attributes": {"type": "array"}}},
            ]
        },
    )

    user_id: EntityId | None = None
    attributes: list[WeightedAttribute] | None = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    embedding_type: TypeName | None = None
    k: StrictInt = Field(default=10, ge=1, le=MAX_K)
    filters: Filter | None = None
    partitions: Partitions | None = None
    exclude_item_ids: list[EntityId] = Field(default_factory=list, max_length=MAX_EXCLUDED)
    exclude_seen: StrictBool = True
    explain: StrictBool = False
    exact: StrictBool = Field(
        default=False,
        description="Score every item of the version under the filters exactly (brute force) instead of "
        "searching the HNSW graph: the exact top-k, at a cost that grows with the catalog. Lucene already "
        "switches to exact search by itself when the filters leave few candidates.",
    )

    @model_validator(mode="after")
    def _someone(self) -> RecommendRequest:
        if self.user_id is None and self.attributes is None:
            raise ValueError("give 'user_id', 'attributes', or both")
        _scope(self)
        return self


def _scope(request: RecommendRequest | SimilarQuery) -> None:
    """Fold `partitions` into `filters`: every scorer (k-NN, fallback, popular) answers from them only."""
    try:
        tree = scoped(request.filters, request.partitions)
    except ValueError as exc:
        raise ValueError(f"partitions: {exc}") from None
    object.__setattr__(request, "filters", tree)  # frozen: set once, while validating


class SimilarQuery(BaseModel):
    """Query parameters of GET /v1/items/{item_id}/similar (filters already parsed from JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: EntityId
    k: StrictInt = Field(default=10, ge=1, le=MAX_K)
    embedding_type: TypeName | None = None
    filters: Filter | None = None
    partitions: Partitions | None = None

    @model_validator(mode="after")
    def _partitions(self) -> SimilarQuery:
        _scope(self)
        return self


class ItemExplain(BaseModel):
    """Why an item is where it is (explain=true)."""

    similarity: float | None = Field(description="The model similarity (embedding scorer).")
    engine_score: float = Field(description="The raw OpenSearch score.")
    index: str | None
    filters: dict[str, Any] | None = Field(description="The business filter tree applied.")
    excluded: int = Field(description="How many item ids were excluded (given + seen).")
    fallback_reason: str | None = None


class RecommendedItem(BaseModel):
    """One recommended item, the scorer and version that scored it, and its metadata: every field of the item
    schema (LOCKSTEP_CATALOG_SCHEMA), null where the item has none."""

    model_config = ConfigDict(extra="allow")

    item_id: str
    score: float
    scorer: Literal["embedding", "fallback", "popular"]
    version: str | None = Field(
        description="The version of the vectors that scored it (fallback: the request's)."
    )
    explain: ItemExplain | None = None


class AssignmentInfo(BaseModel):
    """How the embedding type was chosen."""

    source: Literal["request", "ab"]
    weights: dict[str, float] = Field(description="The split in effect (ab only).")


class RecommendResponse(BaseModel):
    """Response of /v1/recommend and /v1/items/{id}/similar."""

    embedding_type: str
    version: str | None = Field(
        description="The version of the user (or item) vector every embedding score used."
    )
    items: list[RecommendedItem]
    degraded: bool = Field(
        description="Not the whole answer: a dependency was down or slow (a popular list stands in), or "
        "some shard of the index had no copy that answered (the items the other shards found are served, "
        "embedding-scored by the same version)."
    )
    degraded_reason: str | None = Field(
        default=None,
        description="Why it is degraded; for a partial search, which shards of which index did not answer.",
    )
    assignment: AssignmentInfo | None = None
    cached: bool = False
    took_ms: float
    timings: dict[str, float] = Field(description="Milliseconds per step.")


def filter_json(node: FilterNode | None) -> dict[str, Any] | None:
    """The filter tree as JSON data (for explain and cache keys)."""
    if node is None:
        return None
    return filter_to_json(node)


class Health(BaseModel):
    """GET /healthz, /readyz."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, StrictBool | str] = Field(default_factory=dict)
