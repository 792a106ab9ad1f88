"""User profiles: each user's most recent interactions, built from the ratings and written to Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Set
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from contract.keys import Keys
from contract.profiles import Profile
from contract.redis_clients import SyncRedis
from training.data import Ratings
from training.split import frame_for, window
from training.validation import PublishError

_COLUMNS = ("user_id", "book_id", "rating")


def write_profiles(
    client: SyncRedis,
    keys: Keys,
    profiles: Iterable[Profile],
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> set[str]:
    """Write each profile's JSON, and its user to the index, in pipelined chunks; returns the users."""
    users: set[str] = set()
    iterator = iter(profiles)
    while chunk := list(islice(iterator, chunk_size)):
        pipe = client.pipeline(transaction=False)
        for profile in chunk:
            pipe.set(keys.profile(profile.user_id), profile.model_dump_json())
            users.add(profile.user_id)
        pipe.zadd(keys.profile_users(), dict.fromkeys((p.user_id for p in chunk), 0))
        pipe.execute()
        if progress is not None:
            progress(len(users))
    return users


def remove_profiles_except(client: SyncRedis, keys: Keys, keep: Set[str], chunk_size: int = 1000) -> int:
    """Delete every stored profile whose user is not in `keep`; returns how many were deleted.

    For a load that replaces the profiles: run after the new ones are written, so a user never lacks a
    profile that the load has for them.
    """
    listed = (user.decode() for user in client.zrange(keys.profile_users(), 0, -1))  # type: ignore[union-attr]
    stale = [user for user in listed if user not in keep]
    for start in range(0, len(stale), chunk_size):
        chunk = stale[start : start + chunk_size]
        # Out of the index first: a listed user always has a profile.
        client.zrem(keys.profile_users(), *chunk)
        client.unlink(*(keys.profile(user) for user in chunk))
    return len(stale)


def profiles_from_ratings(path: Path, max_per_user: int = 50, history: float = 1.0) -> Iterator[Profile]:
    """Profiles from a `user_id,book_id,rating` CSV (gzip ok): each user's last rows, weight = rating.

    Rows are chronological per user, so the last `max_per_user` rows of a user are the most recent.
    With `history` < 1, only the first share of each user's rows counts, as `lockstep train --history`
    cuts them: the profiles as they stood when such a version was trained (a user with no row then has none).
    """
    if max_per_user < 1:
        raise PublishError(f"max_per_user must be >= 1, got {max_per_user}")
    users, books, ratings = _read(path)
    if history < 1.0:
        earlier = window(Ratings(users, books, ratings), frame_for(0.0, history))
        users, books, ratings = earlier.user_ids, earlier.book_ids, earlier.ratings
    # A stable sort groups each user's rows together and keeps their file (= time) order.
    order = np.argsort(users, kind="stable")
    users, books, ratings = users[order], books[order], ratings[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first = max(start, end - max_per_user)
        # One validation per profile (not per interaction): about 3x faster on the 566k goodbooks ratings.
        yield Profile.model_validate(
            {
                "user_id": str(users[start]),
                "interactions": [
                    {"item_id": str(book), "weight": float(rating)}
                    for book, rating in zip(
                        books[first:end].tolist(), ratings[first:end].tolist(), strict=True
                    )
                ],
            }
        )


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                include_columns=list(_COLUMNS), column_types=dict.fromkeys(_COLUMNS, pa.int64())
            ),
        )
    except FileNotFoundError as exc:
        raise PublishError(f"{path}: no such file") from exc
    except (pa.ArrowInvalid, KeyError) as exc:
        raise PublishError(f"{path}: not a user_id,book_id,rating CSV ({exc})") from exc
    columns = []
    for name in _COLUMNS:
        column = table.column(name)
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise PublishError(f"{path}: row {row + 1}: {name} is empty")
        columns.append(column.to_numpy())
    users, books, ratings = columns
    bad = (ratings < 1) | (ratings > 5)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PublishError(f"{path}: row {row + 1}: rating {ratings[row]} is outside 1..5")
    return users, books, ratings
