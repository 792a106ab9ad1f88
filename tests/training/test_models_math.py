"""The model math on tiny matrices: EASE's closed form, its rank-d factors, tag/author linearity."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import BookAttributes, Ratings
from training.models.als import ALSConfig, train_als
from training.models.ease import EASEConfig, ease_weights, factorize, train_ease
from training.models.embeddings import interactions
from training.models.tagauthor import TagAuthorConfig, train_tagauthor


def _random_ratings(n_users: int, n_books: int, per_user: int, seed: int = 3) -> Ratings:
    rng = np.random.default_rng(seed)
    users, books = [], []
    for user in range(1, n_users + 1):
        # Two taste groups, so there is structure to learn.
        pool = np.arange(1, n_books // 2 + 1) if user % 2 else np.arange(n_books // 2 + 1, n_books + 1)
        chosen = rng.choice(pool, size=per_user, replace=False)
        users += [user] * per_user
        books += chosen.tolist()
    stars = rng.integers(1, 6, size=len(users))
    return Ratings(np.array(users, dtype=np.int64), np.array(books, dtype=np.int64), stars.astype(np.int64))


def test_ease_closed_form_matches_per_column_constrained_ridge() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((40, 6)) < 0.4).astype(np.float64)
    gram, lam = x.T @ x, 2.5
    weights = ease_weights(gram, lam)
    assert np.allclose(np.diag(weights), 0.0)
    for j in range(6):
        # Column j of B regresses item j on every other item with ridge penalty lam.
        others = [i for i in range(6) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + lam * np.eye(5), a.T @ x[:, j])
        assert np.allclose(weights[others, j], expected, atol=1e-10)


def test_ease_refuses_non_positive_lambda() -> None:
    with pytest.raises(ValueError, match="lambda"):
        ease_weights(np.eye(3), 0.0)


@pytest.mark.parametrize("method", ["projected", "svd"])
def test_full_rank_factors_reproduce_b(method: str) -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((50, 8)) < 0.5).astype(np.float64)
    gram = x.T @ x
    weights = ease_weights(gram, 1.0)
    left, right = factorize(weights, gram, 8, method)
    assert np.allclose(left @ right.T, weights, atol=1e-8)


def test_projected_factors_keep_every_users_top_k_when_scores_have_low_rank() -> None:
    # Users come in 3 patterns, so X B has rank <= 3: 3 projected dimensions keep every score.
    patterns = np.array([[1, 1, 0, 0, 0, 0, 1, 0], [0, 0, 1, 1, 0, 0, 0, 1], [0, 1, 0, 0, 1, 1, 0, 0]], float)
    x = np.repeat(patterns, [5, 7, 4], axis=0)
    x[0, 5] = 1.0  # one odd user keeps the gram matrix from being block-trivial
    gram = x.T @ x
    weights = ease_weights(gram, 0.5)
    rank = np.linalg.matrix_rank(x @ weights)
    left, right = factorize(weights, gram, rank, "projected")
    full, low = x @ weights, x @ left @ right.T
    assert np.allclose(full, low, atol=1e-8)
    for user in range(len(x)):
        # Ties make the order of equal scores arbitrary: compare the top-3 lists by their true scores.
        top_low = np.argsort(-low[user])[:3]
        assert np.allclose(full[user][top_low], np.sort(full[user])[::-1][:3], atol=1e-8)


def test_ease_embeddings_score_like_x_times_p_q() -> None:
    history = _random_ratings(60, 12, 4)
    emb = train_ease(history, EASEConfig(dim=4, lam=5.0))
    assert emb.items is not None and emb.attributes is not None
    assert emb.items.ids == tuple(str(b) for b in range(1, 13))
    assert emb.attributes.ids == tuple(f"item:{b}" for b in range(1, 13))
    assert emb.items.matrix.shape == (12, 4) and emb.items.matrix.dtype == np.float32
    data = interactions(history)
    user = data.matrix[0].toarray()[0]
    gram = (data.matrix.T @ data.matrix).toarray()
    left, right = factorize(ease_weights(gram, 5.0), gram, 4)
    assert np.allclose(user @ emb.attributes.matrix @ emb.items.matrix.T, user @ left @ right.T, atol=1e-4)


def test_ease_pads_to_its_dimension_when_a_frame_has_fewer_books() -> None:
    emb = train_ease(_random_ratings(10, 6, 2), EASEConfig(dim=16, lam=1.0))
    assert emb.items is not None and emb.items.matrix.shape == (6, 16)


def test_als_embeds_every_user_and_rated_book_and_ranks_the_taste_group_first() -> None:
    history = _random_ratings(80, 20, 5)
    emb = train_als(history, ALSConfig(factors=8, regularization=1.0, iterations=8))
    assert emb.users is not None and emb.items is not None
    assert len(emb.users.ids) == 80 and emb.users.matrix.shape == (80, 8)
    assert set(emb.items.ids) == {str(b) for b in np.unique(history.book_ids)}
    scores = emb.users.matrix @ emb.items.matrix.T
    odd = np.array([int(i) <= 10 for i in emb.items.ids])
    # Odd users read only books 1..10: their best-scored book is in that half.
    assert all(odd[np.argmax(scores[row])] for row in range(0, 80, 2))
    again = train_als(history, ALSConfig(factors=8, regularization=1.0, iterations=8))
    assert again.users is not None and np.array_equal(again.users.matrix, emb.users.matrix)  # seeded


def _attributes() -> BookAttributes:
    # Books 1..12 are rated; 13 and 14 are not, but share an author with rated ones; 15's author is unknown.
    rows, cols, weights = [], [], []
    names = ["tag:1", "tag:2", "author:a", "author:b", "author:c", "author:z"]
    for row, book in enumerate(range(1, 16)):
        if book <= 12:
            tag = 0 if book <= 6 else 1
            author = 2 + (book % 3 == 0) + (book % 4 == 0)
            entries = [(tag, 0.5), (author, 0.5)]
        else:
            entries = [({13: 2, 14: 3, 15: 5}[book], 1.0)]
        for col, weight in entries:
            rows.append(row)
            cols.append(col)
            weights.append(weight)
    return BookAttributes(
        book_ids=np.arange(1, 16, dtype=np.int64),
        attribute_ids=tuple(names),
        rows=np.array(rows, dtype=np.int64),
        columns=np.array(cols, dtype=np.int64),
        weights=np.array(weights),
    )


def test_tagauthor_user_from_items_equals_user_from_tags_and_authors() -> None:
    attributes = _attributes()
    history = _random_ratings(60, 12, 4)
    emb = train_tagauthor(history, attributes, TagAuthorConfig(dim=4, lam=5.0, ridge=0.1))
    assert emb.items is not None and emb.attributes is not None
    vectors = dict(zip(emb.attributes.ids, emb.attributes.matrix, strict=True))
    items = dict(zip(emb.items.ids, emb.items.matrix, strict=True))
    # Unrated books 13 (author a) and 14 (author b) are embedded; 15's author never met a rating.
    assert {"13", "14"} <= set(items) and "15" not in items and "author:z" not in vectors
    design = np.zeros((15, len(attributes.attribute_ids)))
    design[attributes.rows, attributes.columns] = attributes.weights
    for book, vector in items.items():
        row = int(book) - 1
        direct = sum(
            design[row, col] * vectors[name]
            for col, name in enumerate(attributes.attribute_ids)
            if design[row, col]
        )
        assert np.allclose(vector, direct, atol=1e-5)  # an item is the weighted sum of its attributes
        assert np.array_equal(vectors[f"item:{book}"], vector)
    # A user who read books 2 (weight 4) and 13 (weight 1): sum of item vectors == sum of attribute vectors.
    weights = {2: 4.0, 13: 1.0}
    from_items = sum(w * vectors[f"item:{b}"] for b, w in weights.items())
    per_attribute = {
        name: sum(w * design[b - 1, col] for b, w in weights.items())
        for col, name in enumerate(attributes.attribute_ids)
    }
    from_attributes = sum(w * vectors[name] for name, w in per_attribute.items() if w)
    assert np.allclose(from_items, from_attributes, atol=1e-5)
