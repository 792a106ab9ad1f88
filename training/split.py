"""Splits of the ratings: per-user history windows (training frames) and test holdouts (evaluation)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from contract.holdout import HoldoutError, parse_holdout, render_holdout
from contract.versions import Frame
from training.data import Ints, Ratings

# goodbooks has no timestamps, only (approximately chronological) row order. A training frame is
# mapped onto that order: each user's history is laid out evenly over [EPOCH, EPOCH + SPAN), so the
# frame 2017-01-01..2017-10-20 is the first 80% of every user's ratings, and ..2018-01-01 is all of them.
EPOCH = datetime(2017, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)


@dataclass(frozen=True)
class Pairs:
    """(user, book) pairs a model should find: the test side of a split."""

    user_ids: Ints
    book_ids: Ints

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class Split:
    """What a model may learn from, and what it is then asked to find."""

    history: Ratings
    test: Pairs


def fraction_of(moment: datetime) -> float:
    """Where a moment falls in the synthetic timeline, as a share of each user's history (clipped to 0..1)."""
    return min(max((moment - EPOCH) / SPAN, 0.0), 1.0)


def frame_for(start: float, end: float) -> Frame:
    """The frame covering history shares [start, end), to the second."""
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(f"history shares must satisfy 0 <= start < end <= 1, got {start}..{end}")
    seconds = SPAN.total_seconds()
    return Frame(
        EPOCH + timedelta(seconds=round(start * seconds)), EPOCH + timedelta(seconds=round(end * seconds))
    )


def positions(ratings: Ratings) -> tuple[Ints, Ints]:
    """For each row: its 0-based rank within its user's rows (in row order), and that user's row count."""
    order = np.argsort(ratings.user_ids, kind="stable")
    users = ratings.user_ids[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank_sorted = np.arange(len(users)) - np.repeat(starts, counts)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    count = np.empty_like(rank_sorted)
    count[order] = np.repeat(counts, counts)
    return rank, count


def window(ratings: Ratings, frame: Frame) -> Ratings:
    """The ratings of a frame: for each user with n ratings, rows floor(s*n) .. floor(e*n)-1 of theirs.

    s and e are the frame bounds as history shares (`fraction_of`). Flooring the end means a share
    never rounds a user's later ratings into an earlier frame.
    """
    start, end = fraction_of(frame.start), fraction_of(frame.end)
    rank, count = positions(ratings)
    low = np.floor(start * count + 1e-9).astype(np.int64)
    high = np.floor(end * count + 1e-9).astype(np.int64)
    return ratings.take((rank >= low) & (rank < high))


def leave_last_out(ratings: Ratings, *, n_test: int = 2, min_ratings: int = 6) -> Split:
    """Test = the last `n_test` rows of each user with at least `min_ratings`; history = everything else."""
    rank, count = positions(ratings)
    test = (count >= min_ratings) & (rank >= count - n_test)
    held = ratings.take(test)
    return Split(ratings.take(~test), Pairs(held.user_ids, held.book_ids))


def unseen_after(ratings: Ratings, history: float) -> Pairs:
    """Each user's ratings after the first `history` share of theirs: unseen by `train --history` that share.

    `window` floors both bounds the same way, so these and the training window of
    frame_for(0, history) partition every user's ratings.
    """
    later = window(ratings, frame_for(history, 1.0))
    return Pairs(later.user_ids, later.book_ids)


def write_holdout(path: Path, pairs: Pairs) -> None:
    """Write pairs as a holdout file (contract.holdout; gzipped for a .gz name), all or nothing."""
    rows = zip(pairs.user_ids.tolist(), pairs.book_ids.tolist(), strict=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(render_holdout(rows, gzipped=path.suffix == ".gz"))
    partial.replace(path)  # readers never see half a file


def read_holdout(path: Path) -> Pairs:
    """The pairs of a holdout file (contract.holdout), whose ids must be integers here."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HoldoutError(f"holdout {path}: cannot read ({exc.strerror})") from exc
    users: list[int] = []
    books: list[int] = []
    for row in parse_holdout(raw, str(path)):
        try:
            user, book = int(row.user_id), int(row.book_id)
        except ValueError as exc:
            raise HoldoutError(
                f"holdout {path} line {row.line}: user_id and book_id must be integers, got "
                f"{row.user_id!r},{row.book_id!r}"
            ) from exc
        users.append(user)
        books.append(book)
    return Pairs(np.asarray(users, dtype=np.int64), np.asarray(books, dtype=np.int64))


def holdout_split(ratings: Ratings, holdout: Pairs) -> Split:
    """Test = the holdout pairs; history = every rating, less any pair that is also in the holdout."""
    key = ratings.user_ids * (1 << 32) + ratings.book_ids
    held = holdout.user_ids * (1 << 32) + holdout.book_ids
    return Split(ratings.take(~np.isin(key, held)), holdout)


def cadence(n_versions: int) -> list[float]:
    """History shares of `n_versions` successive versions, 10 points apart and ending at 100%."""
    if not 1 <= n_versions <= 6:
        raise ValueError(f"versions must be 1..6, got {n_versions}")
    return [round(1.0 - 0.1 * (n_versions - 1 - k), 10) for k in range(n_versions)]


def describe(frame: Frame) -> str:
    """A frame with the history shares it stands for, e.g. '2017-01-01..2017-10-20 (0%..80%)'."""
    start, end = fraction_of(frame.start), fraction_of(frame.end)
    return f"{frame.start.date()}..{frame.end.date()} ({math.floor(start * 100)}%..{round(end * 100)}%)"
