"""Embedding types: an algorithm plus its configuration, with a family, dimension and similarity."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.patterns import python_regex, schema_pattern

_TYPE_NAME = "[a-z0-9][a-z0-9._-]{0,63}"
TYPE_NAME = python_regex(_TYPE_NAME)
TYPE_NAME_PATTERN = schema_pattern(_TYPE_NAME)  # for pydantic/FastAPI `pattern=` and the OpenAPI document
NAMESPACE = python_regex("[a-z][a-z0-9_]{0,31}")
MAX_DIM = 4096
# HNSW candidates of one k-NN query: at least MIN_CANDIDATES (or k), at most MAX_CANDIDATES (search.requests).
MIN_CANDIDATES = 100
MAX_CANDIDATES = 10_000


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


class Encoder(StrEnum):
    """How the index stores a type's vectors for its HNSW graph (the full vectors are always kept too)."""

    FLOAT = "float"  # 32-bit floats as published
    SQ7 = "sq7"  # lucene scalar quantization, 7 bits per dimension
    SQ1 = "sq1"  # lucene scalar quantization, 1 bit per dimension: refused (see IndexParams)


class IndexParams(BaseModel):
    """A type's own k-NN index parameters; one left out takes its setting (search.templates.effective)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    m: int | None = Field(default=None, ge=2, le=100, description="HNSW graph degree (hnsw_m).")
    ef_construction: int | None = Field(
        default=None, ge=8, le=4096, description="HNSW build-time beam width (hnsw_ef_construction)."
    )
    ef_search: int | None = Field(
        default=None,
        ge=8,
        le=10000,
        description="HNSW query-time beam width of serving and of the recall gate (serving_ef_search).",
    )
    encoder: Encoder = Field(default=Encoder.FLOAT, description="float, or lucene scalar quantization.")
    candidates: int | None = Field(
        default=None,
        ge=MIN_CANDIDATES,
        le=MAX_CANDIDATES,
        description="HNSW candidates per query of serving and of the recall gate: the k best are taken from "
        f"this many, re-scored exactly on the full-precision vectors when the encoder quantizes (default "
        f"{MIN_CANDIDATES}, or k when larger). A quantized type may need more: sq7 at 1M x 64 with lucene's "
        "default confidence interval plateaued at recall@10 0.83 with 100 (bench/README.md).",
    )
    confidence_interval: float | None = Field(
        default=None,
        description="A quantized encoder's confidence interval: the share of each segment's values lucene's "
        "scalar quantizer fits its range to, from 0.9 to 1.0, or 0 to work the range out per segment "
        "(dynamic). Default: lucene's, 1 - 1/(dim + 1). At 1M x 64 with 100 candidates, sq7 read recall@10 "
        "0.80-0.82 with the default and 0.974 with 0 (bench/README.md).",
    )

    @field_validator("confidence_interval")
    @classmethod
    def _interval(cls, value: float | None) -> float | None:
        if value is not None and value != 0 and not 0.9 <= value <= 1.0:
            raise ValueError(f"{value} is neither 0 (dynamic) nor from 0.9 to 1.0")
        return value

    @model_validator(mode="after")
    def _quantized_interval(self) -> IndexParams:
        if self.confidence_interval is not None and self.encoder is Encoder.FLOAT:
            raise ValueError("confidence_interval applies to a quantized encoder (sq7), not to float")
        return self

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, value: Encoder) -> Encoder:
        if value is Encoder.SQ1:
            # Verified on OpenSearch 3.6 + k-NN 3.6.0.0 from Maven: the first k-NN query of a 1-bit field
            # loads a native SIMD library (opensearchknn_simd) the Maven build lacks, and the node exits.
            raise ValueError(
                "encoder 'sq1' is refused: searching a 1-bit lucene field needs the k-NN native SIMD "
                "library, which the Maven k-NN build lacks (the first query kills the node); use 'sq7'"
            )
        return value


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
    index: IndexParams = Field(
        default_factory=IndexParams, description="This type's k-NN index parameters (defaults: settings)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TYPE_NAME.fullmatch(value):
            raise ValueError(f"type name {value!r} must match {TYPE_NAME.pattern}")
        return value

    @field_validator("attribute_namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ns in value:
            if not NAMESPACE.fullmatch(ns):
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
