"""Offline evaluation: top-k recommendations from trained vectors, scored against a split's test pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from contract import ranking
from training.data import Ints, Ratings
from training.models.embeddings import Embeddings, Matrix, interaction_weights
from training.split import Split

K = 10
_USER_CHUNK = 2048  # users scored per matrix product: bounds memory at chunk x catalog floats
_NONE = -1  # an empty slot of a ranked list (fewer candidates than k, or no user vector)

BASELINE_NAME = "popularity"


@dataclass(frozen=True)
class Metrics:
    """Mean top-k metrics over the test users, and catalog coverage of their lists."""

    recall: float
    ndcg: float
    map: float
    coverage: float
    users: int

    def as_json(self, k: int = K) -> dict[str, float | int]:
        """The machine-readable form: {"recall@10": ..., "ndcg@10": ..., "map@10": ..., ...}."""
        return {
            f"recall@{k}": round(self.recall, 5),
            f"ndcg@{k}": round(self.ndcg, 5),
            f"map@{k}": round(self.map, 5),
            "coverage": round(self.coverage, 5),
            "users": self.users,
        }


@dataclass(frozen=True)
class Report:
    """Metrics per embedding type and for the popularity baseline."""

    types: dict[str, Metrics]
    baseline: Metrics
    k: int = K

    def as_json(self) -> dict[str, object]:
        """{"types": {TYPE: {...}}, "baseline": {...}, "k": 10}."""
        return {
            "types": {name: metrics.as_json(self.k) for name, metrics in self.types.items()},
            "baseline": self.baseline.as_json(self.k),
            "k": self.k,
        }


# --- scoring (ranked: (users, k) item ids with _NONE padding; relevant: per user) ----------------------


def coverage(ranked: Ints, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one list."""
    shown = np.unique(ranked[ranked != _NONE])
    return len(shown) / catalog_size if catalog_size else 0.0


def summarize(ranked: Ints, relevant: list[frozenset[int]], catalog_size: int) -> Metrics:
    """All metrics of ranked lists against the users' relevant sets (each needs at least one)."""
    hits = ranking.hit_matrix(ranked.tolist(), relevant, ranked.shape[1])
    n_relevant = np.array([len(wanted) for wanted in relevant], dtype=np.int64)
    return Metrics(
        recall=float(ranking.recall_at_k(hits, n_relevant).mean()),
        ndcg=float(ranking.ndcg_at_k(hits, n_relevant).mean()),
        map=float(ranking.map_at_k(hits, n_relevant).mean()),
        coverage=coverage(ranked, catalog_size),
        users=len(relevant),
    )


# --- ranking -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalUsers:
    """The users of a split's test side, their relevant books, and their history as a sparse matrix."""

    user_ids: Ints
    relevant: list[frozenset[int]]
    history_books: Ints  # columns of `history`
    history: sp.csr_matrix  # users x history_books, weighted like training (exclude-seen and aggregation)


def eval_users(split: Split) -> EvalUsers:
    """Group the test pairs by user and collect each such user's history."""
    user_ids, inverse = np.unique(split.test.user_ids, return_inverse=True)
    relevant: list[set[int]] = [set() for _ in user_ids]
    for row, book in zip(inverse.tolist(), split.test.book_ids.tolist(), strict=True):
        relevant[row].add(book)
    mine = np.isin(split.history.user_ids, user_ids)
    rows = np.searchsorted(user_ids, split.history.user_ids[mine])
    books, columns = np.unique(split.history.book_ids[mine], return_inverse=True)
    history = sp.csr_matrix(
        (interaction_weights(split.history.ratings[mine]), (rows, columns)), shape=(len(user_ids), len(books))
    )
    return EvalUsers(user_ids, [frozenset(wanted) for wanted in relevant], books, history)


def _remap(columns_from: Ints, columns_to: Ints) -> tuple[Ints, Ints]:
    """Positions i in columns_from that exist in columns_to, and their positions there."""
    found = np.isin(columns_from, columns_to)
    return np.flatnonzero(found), np.searchsorted(columns_to, columns_from[found])


def top_k(user_matrix: Matrix, item_matrix: Matrix, item_ids: Ints, users: EvalUsers, k: int = K) -> Ints:
    """Top-k item ids per user by dot product, excluding the user's history (rows of zeros get nothing)."""
    order = np.argsort(item_ids)
    item_ids, item_matrix = item_ids[order], item_matrix[order]
    from_cols, to_cols = _remap(users.history_books, item_ids)
    seen = users.history[:, from_cols].tocsr()
    seen = sp.csr_matrix((np.ones(seen.nnz), seen.indices, seen.indptr), shape=seen.shape)
    seen_full = sp.csr_matrix(
        (seen.data, to_cols[seen.indices], seen.indptr), shape=(seen.shape[0], len(item_ids))
    )
    ranked = np.full((len(user_matrix), k), _NONE, dtype=np.int64)
    width = min(k, len(item_ids))
    for start, stop in _chunks(len(user_matrix)):
        scores = user_matrix[start:stop] @ item_matrix.T
        block = seen_full[start:stop].tocoo()
        scores[block.row, block.col] = -np.inf
        best = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        best_scores = np.take_along_axis(scores, best, axis=1)
        best = np.take_along_axis(best, np.argsort(-best_scores, axis=1, kind="stable"), axis=1)
        chosen = item_ids[best]
        valid = np.isfinite(np.take_along_axis(scores, best, axis=1))
        valid &= np.any(user_matrix[start:stop] != 0, axis=1)[:, np.newaxis]
        ranked[start:stop, :width] = np.where(valid, chosen, _NONE)
    return ranked


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, _USER_CHUNK):
        yield start, min(start + _USER_CHUNK, n)


def _ids(labels: tuple[str, ...], namespace: str = "") -> Ints:
    prefix = f"{namespace}:"
    return np.array([int(label.removeprefix(prefix)) for label in labels], dtype=np.int64)


def user_vectors(embeddings: Embeddings, users: EvalUsers) -> Matrix:
    """The users' vectors as serving would get them: direct, or summed from `item:<id>` attributes.

    Aggregation weights are the same interaction weights as training; the orchestrator may scale
    the sum to unit length, which changes no user's ranking.
    """
    if embeddings.users is not None:
        known = _ids(embeddings.users.ids)
        order = np.argsort(known)
        rows = np.searchsorted(known[order], users.user_ids).clip(0, len(known) - 1)
        found = known[order][rows] == users.user_ids
        matrix = embeddings.users.matrix[order][rows]
        return np.where(found[:, np.newaxis], matrix, 0.0).astype(np.float32)
    if embeddings.attributes is None:
        raise ValueError("embeddings have neither user vectors nor attribute vectors to aggregate")
    item_attrs = [i for i, label in enumerate(embeddings.attributes.ids) if label.startswith("item:")]
    ids = _ids(tuple(embeddings.attributes.ids[i] for i in item_attrs), "item")
    order = np.argsort(ids)
    vectors = embeddings.attributes.matrix[np.asarray(item_attrs, dtype=np.int64)[order]]
    from_cols, to_cols = _remap(users.history_books, ids[order])
    weights = users.history[:, from_cols]
    projected = sp.csr_matrix(
        (weights.data, to_cols[weights.indices], weights.indptr), shape=(weights.shape[0], len(ids))
    )
    return np.asarray(projected @ vectors, dtype=np.float32)


def rank_embeddings(
    embeddings: Embeddings, users: EvalUsers, k: int = K, catalog: Ints | None = None
) -> tuple[Ints, int]:
    """Top-k lists of a trained model for the test users (among `catalog` if given), and its catalog size."""
    if embeddings.items is None:
        raise ValueError("embeddings have no item vectors")
    item_ids = _ids(embeddings.items.ids)
    keep = np.isin(item_ids, catalog) if catalog is not None else np.ones(len(item_ids), dtype=bool)
    ranked = top_k(user_vectors(embeddings, users), embeddings.items.matrix[keep], item_ids[keep], users, k)
    return ranked, int(keep.sum())


def rank_popularity(history: Ratings, users: EvalUsers, k: int = K) -> tuple[Ints, int]:
    """Top-k most rated books of the history, excluding each user's own."""
    books, counts = np.unique(history.book_ids, return_counts=True)
    scores = counts.astype(np.float32)[np.newaxis, :]
    ranked = top_k(np.ones((len(users.user_ids), 1), np.float32), scores.T.copy(), books, users, k)
    return ranked, len(books)


def evaluate(
    split: Split,
    trainers: dict[str, Callable[[Ratings], Embeddings]],
    *,
    k: int = K,
    catalog: Ints | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Train each model on the split's history, rank for the test users, and score the lists.

    `catalog` limits every model's candidates, e.g. to the books that have ratings at all: our copy
    of goodbooks holds the ratings of 1,188 books only, so a test pair can never name another book,
    and a model that embeds the other 8,812 (tags/authors) would be charged for recommending books
    whose readers are simply not in the data.
    """
    users = eval_users(split)
    results: dict[str, Metrics] = {}
    for name, train in trainers.items():
        if progress:
            progress(name)
        ranked, size = rank_embeddings(train(split.history), users, k, catalog)
        results[name] = summarize(ranked, users.relevant, size)
    ranked, size = rank_popularity(split.history, users, k)
    return Report(results, summarize(ranked, users.relevant, size), k)
