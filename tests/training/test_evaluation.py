"""Splits, frames, holdout files and the metric functions, on hand-computed examples."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from contract.holdout import HoldoutError
from contract.ranking import hit_matrix, map_at_k, ndcg_at_k, recall_at_k
from contract.versions import Frame
from training.data import Ratings
from training.evaluation import coverage, eval_users, rank_popularity, summarize, top_k
from training.split import (
    Pairs,
    Split,
    cadence,
    fraction_of,
    frame_for,
    holdout_split,
    leave_last_out,
    read_holdout,
    window,
)


def _ratings(rows: list[tuple[int, int, int]]) -> Ratings:
    users, books, stars = zip(*rows, strict=True)
    return Ratings(np.array(users), np.array(books), np.array(stars))


# Interleaved rows: user 1 has 7 ratings, user 2 has 5, user 3 has 6.
ROWS = (
    [(1, 10 + i, 4) for i in range(7)]
    + [(2, 30 + i, 3) for i in range(5)]
    + [(3, 50 + i, 5) for i in range(6)]
)
ROWS = [ROWS[i] for i in np.random.default_rng(0).permutation(len(ROWS))]


def _per_user(r: Ratings, user: int) -> list[int]:
    return [int(book) for book in r.book_ids[r.user_ids == user]]


def test_leave_last_out_holds_the_last_two_of_users_with_six_or_more() -> None:
    ratings = _ratings(ROWS)
    split = leave_last_out(ratings)
    test = sorted(zip(split.test.user_ids.tolist(), split.test.book_ids.tolist(), strict=True))
    order1, order3 = _per_user(ratings, 1), _per_user(ratings, 3)
    assert test == sorted([(1, b) for b in order1[-2:]] + [(3, b) for b in order3[-2:]])
    assert _per_user(split.history, 1) == order1[:-2]  # row order kept
    assert _per_user(split.history, 2) == _per_user(ratings, 2)  # 5 ratings: all history
    assert len(split.history) + len(split.test) == len(ratings)


def test_window_takes_each_users_share_in_row_order() -> None:
    ratings = _ratings(ROWS)
    first = window(ratings, frame_for(0.0, 0.5))
    assert _per_user(first, 1) == _per_user(ratings, 1)[:3]  # floor(0.5 * 7)
    assert _per_user(first, 2) == _per_user(ratings, 2)[:2]
    rest = window(ratings, frame_for(0.5, 1.0))
    assert _per_user(rest, 1) == _per_user(ratings, 1)[3:]
    assert len(first) + len(rest) == len(ratings)
    assert len(window(ratings, frame_for(0.0, 1.0))) == len(ratings)


def test_frames_map_to_history_shares_and_back() -> None:
    frame = frame_for(0.0, 0.8)
    assert frame == Frame.parse("2017-01-01..2017-10-20")
    assert fraction_of(frame.end) == pytest.approx(0.8)
    assert fraction_of(datetime(2030, 1, 1, tzinfo=UTC)) == 1.0
    assert cadence(3) == [0.8, 0.9, 1.0]
    with pytest.raises(ValueError, match="versions"):
        cadence(0)
    with pytest.raises(ValueError, match="shares"):
        frame_for(0.5, 0.5)


def test_metrics_on_a_hand_computed_example() -> None:
    ranked = np.array([[5, 1, 7, -1], [2, 3, 4, 6], [9, 8, 7, 6]])
    relevant = [frozenset({1, 7}), frozenset({6}), frozenset({1, 2, 3, 4, 5})]
    hits = hit_matrix(ranked.tolist(), relevant, 4)
    assert hits.tolist() == [[False, True, True, False], [False, False, False, True], [False] * 4]
    n = np.array([2, 1, 5])
    assert recall_at_k(hits, n).tolist() == [1.0, 1.0, 0.0]  # user 3: 0 of min(5, 4)
    d = [1 / math.log2(r + 2) for r in range(4)]
    assert ndcg_at_k(hits, n) == pytest.approx([(d[1] + d[2]) / (d[0] + d[1]), d[3] / d[0], 0.0])
    assert map_at_k(hits, n) == pytest.approx([(1 / 2 + 2 / 3) / 2, 1 / 4, 0.0])
    assert coverage(ranked, 20) == len({5, 1, 7, 2, 3, 4, 6, 9, 8}) / 20
    summary = summarize(ranked, relevant, 20)
    assert summary.recall == pytest.approx(2 / 3) and summary.users == 3
    assert set(summary.as_json()) == {"recall@10", "ndcg@10", "map@10", "coverage", "users"}


def test_top_k_excludes_seen_items_and_users_without_a_vector() -> None:
    history = _ratings([(1, 10, 5), (1, 11, 3), (2, 12, 4)])
    split = Split(history, Pairs(np.array([1, 2, 3]), np.array([13, 10, 10])))
    users = eval_users(split)
    items = np.array([[3.0], [2.0], [1.0], [0.5]], dtype=np.float32)  # books 10, 11, 12, 13
    user_matrix = np.array([[1.0], [1.0], [0.0]], dtype=np.float32)  # user 3 has no vector
    ranked = top_k(user_matrix, items, np.array([10, 11, 12, 13]), users, k=3)
    assert ranked.tolist() == [[12, 13, -1], [10, 11, 13], [-1, -1, -1]]
    popular, size = rank_popularity(history, users, k=2)
    assert size == 3 and popular[0].tolist() == [12, -1] and popular[2].tolist()[0] in {10, 11, 12}


def test_holdout_file_gzipped_or_plain(tmp_path: Path) -> None:
    plain = tmp_path / "h.csv"
    plain.write_text("book_id,user_id\n10,1\n11,2\n")
    zipped = tmp_path / "h.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        pairs = read_holdout(path)
        assert pairs.user_ids.tolist() == [1, 2] and pairs.book_ids.tolist() == [10, 11]
    split = holdout_split(_ratings([(1, 10, 5), (1, 12, 4)]), read_holdout(plain))
    assert split.history.book_ids.tolist() == [12]  # a holdout pair never stays in the history


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,book\n1,2\n", "needs columns user_id,book_id; header is user,book"),
        ("", "header is \\(empty\\)"),
        ("user_id,book_id\n1,x\n", "line 2: user_id and book_id must be integers"),
        ("user_id,book_id\n", "no rows"),
    ],
)
def test_bad_holdout_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(HoldoutError, match=message):
        read_holdout(path)


def test_missing_holdout_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(HoldoutError, match=r"nope\.csv: cannot read"):
        read_holdout(tmp_path / "nope.csv")
