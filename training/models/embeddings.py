"""What a trained model hands to publishing and evaluation: id-labelled float32 vectors per kind."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from training.data import Ints, Ratings

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Vectors:
    """Rows of `matrix` are the vectors of `ids`, in that order."""

    ids: tuple[str, ...]
    matrix: Matrix

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but a matrix of shape {self.matrix.shape}")


@dataclass(frozen=True)
class Embeddings:
    """One trained version: the vectors a family publishes (users, items, attributes 'namespace:id')."""

    dim: int
    users: Vectors | None = None
    items: Vectors | None = None
    attributes: Vectors | None = None
    params: dict[str, str] = field(default_factory=dict)


def interaction_weights(ratings: Ints) -> npt.NDArray[np.float64]:
    """How much one rating counts (training and user aggregation alike): its stars, 1..5.

    The same weight `lockstep profiles load` gives an interaction, so a user vector the orchestrator
    aggregates from a profile is the one evaluation scores (a 0.6..1.4 ramp did no better).
    """
    return ratings.astype(np.float64)


@dataclass(frozen=True)
class Interactions:
    """Ratings as a weighted users x items CSR matrix, with the ids of its rows and columns."""

    user_ids: Ints
    book_ids: Ints
    matrix: sp.csr_matrix


def interactions(history: Ratings) -> Interactions:
    """The weighted user-item matrix of `history` (rows: users with ratings, columns: rated books)."""
    user_ids, rows = np.unique(history.user_ids, return_inverse=True)
    book_ids, columns = np.unique(history.book_ids, return_inverse=True)
    matrix = sp.csr_matrix(
        (interaction_weights(history.ratings), (rows, columns)), shape=(len(user_ids), len(book_ids))
    )
    matrix.sum_duplicates()
    return Interactions(user_ids, book_ids, matrix)


def labels(ids: Ints, namespace: str = "") -> tuple[str, ...]:
    """Integer ids as entity ids, optionally prefixed 'namespace:'."""
    prefix = f"{namespace}:" if namespace else ""
    return tuple(f"{prefix}{value}" for value in ids.tolist())
