"""The embedding types we train and publish, each with the function that trains one version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contract.types import EmbeddingType, Family, Similarity
from training.data import Goodbooks, Ratings, book_attributes
from training.models.als import ALSConfig, train_als
from training.models.ease import EASEConfig, train_ease
from training.models.embeddings import Embeddings
from training.models.tagauthor import TagAuthorConfig, train_tagauthor


@dataclass(frozen=True)
class ModelSpec:
    """A registered type and how to train it on a slice of the ratings."""

    etype: EmbeddingType
    train: Callable[[Goodbooks, Ratings], Embeddings]


def _als(_: Goodbooks, history: Ratings) -> Embeddings:
    return train_als(history, ALSConfig())


def _ease(_: Goodbooks, history: Ratings) -> Embeddings:
    return train_ease(history, EASEConfig())


def _tagauthor(data: Goodbooks, history: Ratings) -> Embeddings:
    return train_tagauthor(history, book_attributes(data), TagAuthorConfig())


SPECS: dict[str, ModelSpec] = {
    spec.etype.name: spec
    for spec in (
        ModelSpec(
            EmbeddingType(
                name="als-d64",
                family=Family.DIRECT_DIRECT,
                dim=ALSConfig().factors,
                similarity=Similarity.DOT,
                description="implicit ALS on BM25-weighted ratings; users and rated books embedded directly.",
            ),
            _als,
        ),
        ModelSpec(
            EmbeddingType(
                name="ease-d128",
                family=Family.INDIRECT_DIRECT,
                dim=EASEConfig().dim,
                similarity=Similarity.DOT,
                attribute_namespaces=("item",),
                description="EASE item-item model, B ~ P Q^T; a user sums item:<id> (P) over their ratings.",
            ),
            _ease,
        ),
        ModelSpec(
            EmbeddingType(
                name="tagauthor-d64",
                family=Family.INDIRECT_INDIRECT,
                dim=TagAuthorConfig().dim,
                similarity=Similarity.DOT,
                attribute_namespaces=("tag", "author", "item"),
                description="Curated tag and author vectors learned from ratings; a book averages its own.",
            ),
            _tagauthor,
        ),
    )
}
