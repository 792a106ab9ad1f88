"""indirect-indirect: tag and author vectors; a book is the weighted average of its attributes' vectors.

Attribute vectors E are learned from the ratings: a symmetric item-item model (the positive part of
EASE's B, symmetrised) gives target vectors V with V V^T ~ S for the rated books, and ridge least
squares fits E so that A E ~ V, where A holds each rated book's normalised tag/author weights. Then
EVERY book's vector is recomputed as A E from its attributes, so books nobody rated (but whose
authors or tags occur among rated books) get a vector too.

The published namespaces are `tag`, `author` and `item`, where `item:<id>` is the book's own vector
v_i = sum_a A[i, a] E[a]. A user, the weighted sum of the `item:` vectors of what they read, is then
by linearity sum_i w_i v_i = sum_a (sum_i w_i A[i, a]) E[a]: the weighted sum of their books' tags
and authors. So serving may aggregate either way and get the same vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from training.data import BookAttributes, Ratings
from training.models.ease import ease_weights
from training.models.embeddings import Embeddings, Vectors, interactions, labels

_ZERO = 1e-8  # an attribute only seen on unrated books learns nothing and is not published


@dataclass(frozen=True)
class TagAuthorConfig:
    """Hyper-parameters; tuned on the leave-last-2-out split (see evaluation)."""

    dim: int = 64
    lam: float = 300.0  # EASE regularisation of the target similarity
    ridge: float = 0.05  # ridge penalty of the attribute regression, relative to the mean row norm


def symmetric_targets(weights: np.ndarray, dim: int) -> np.ndarray:
    """Vectors V (n x dim) with V V^T the best rank-dim PSD approximation of (B + B^T) / 2."""
    values, vectors = np.linalg.eigh((weights + weights.T) / 2)
    top = np.argsort(values)[::-1][:dim]
    return np.asarray(vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None)))


def fit_attributes(design: sp.csr_matrix, targets: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge solution E of design @ E ~ targets, in dual form (rows << attributes)."""
    kernel = (design @ design.T).toarray()
    penalty = ridge * float(np.mean(np.diag(kernel)))
    dual = np.linalg.solve(kernel + penalty * np.eye(kernel.shape[0]), targets)
    return np.asarray(design.T @ dual)


def _namespace_mask(attributes: BookAttributes, namespace: str) -> np.ndarray:
    prefix = f"{namespace}:"
    return np.array([name.startswith(prefix) for name in attributes.attribute_ids], dtype=np.float64)


def _renormalize(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to sum 1 (empty rows stay empty)."""
    sums = np.asarray(rows.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ rows)


def train_tagauthor(
    history: Ratings, attributes: BookAttributes, config: TagAuthorConfig = TagAuthorConfig()
) -> Embeddings:
    """Learn tag/author vectors from `history` and embed every book that has a learned attribute."""
    data = interactions(history)
    gram = (data.matrix.T @ data.matrix).toarray().astype(np.float64)
    targets = symmetric_targets(ease_weights(gram, config.lam), config.dim)

    n_books, n_attributes = len(attributes.book_ids), len(attributes.attribute_ids)
    design = sp.csr_matrix(
        (attributes.weights, (attributes.rows, attributes.columns)), shape=(n_books, n_attributes)
    )
    book_row = {book: row for row, book in enumerate(attributes.book_ids.tolist())}
    rated_rows = np.array([book_row[book] for book in data.book_ids.tolist()], dtype=np.int64)
    rated = design[rated_rows]
    # Books nobody rated are nearly all untagged (book_tags covers the rated ones), so each rated
    # book is also shown as its authors alone, renormalised as an untagged book is: the author
    # vectors must then predict a book on their own, at the scale an untagged book will have.
    authors_only = _renormalize(rated.multiply(_namespace_mask(attributes, "author")).tocsr())
    learned = fit_attributes(
        sp.vstack([rated, authors_only]).tocsr(), np.vstack([targets, targets]), config.ridge
    )
    if learned.shape[1] < config.dim:  # fewer rated books than dimensions (tiny frames)
        learned = np.pad(learned, ((0, 0), (0, config.dim - learned.shape[1])))

    known = np.linalg.norm(learned, axis=1) > _ZERO
    items = np.asarray(design @ learned)
    embedded = np.linalg.norm(items, axis=1) > _ZERO
    item_ids = labels(attributes.book_ids[embedded])
    item_matrix = items[embedded].astype(np.float32)
    attribute_ids = tuple(name for name, keep in zip(attributes.attribute_ids, known, strict=True) if keep)
    return Embeddings(
        dim=config.dim,
        items=Vectors(item_ids, item_matrix),
        attributes=Vectors(
            attribute_ids + tuple(f"item:{book}" for book in item_ids),
            np.vstack([learned[known].astype(np.float32), item_matrix]),
        ),
        params={
            "algorithm": "tag+author ridge onto symmetric EASE",
            "dim": str(config.dim),
            "lambda": str(config.lam),
            "ridge": str(config.ridge),
        },
    )
