"""What the crasher publishes: two small direct-direct types (one per indexing mode) of random vectors,
a new version of one of them every few seconds, and the users the load generator asks for."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np

from contract.indexing import Mode
from contract.profiles import Interaction, Profile
from contract.versions import Frame

# One type per indexing mode: shadow builds and incremental batches are both killed mid-way.
TYPE_MODES: Final[dict[str, Mode]] = {
    "crash-shadow-d16": Mode.SHADOW,
    "crash-incremental-d16": Mode.INCREMENTAL,
}
DIM: Final = 16
CATALOG_LIMIT: Final = 300  # the first goodbooks books: every version has a vector for each of them
USERS: Final = 200
EPOCH: Final = datetime(2020, 1, 1, tzinfo=UTC)


def frame(number: int) -> Frame:
    """The frame of a type's `number`th version (from 1): each ends an hour after the one before."""
    return Frame(EPOCH, EPOCH + timedelta(hours=number))


def user_ids() -> list[str]:
    """The users every version has a vector for."""
    return [f"u{n}" for n in range(USERS)]


def item_ids() -> list[str]:
    """The catalog items every version has a vector for (goodbooks book ids 1..CATALOG_LIMIT)."""
    return [str(n) for n in range(1, CATALOG_LIMIT + 1)]


def write_version(directory: Path, seed: int) -> tuple[Path, Path]:
    """users.npz and items.npz of one version (random unit vectors), as `lockstep publish` reads them."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for name, ids in (("users", user_ids()), ("items", item_ids())):
        vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        path = directory / f"{name}.npz"
        np.savez(path, ids=np.array(ids), vectors=vectors)
        paths.append(path)
    return paths[0], paths[1]


def profiles(seed: int = 5) -> list[Profile]:
    """The load generator's users, each with a few catalog items (sent as attributes by some requests)."""
    rng = random.Random(seed)
    items = item_ids()
    return [
        Profile(
            user_id=user, interactions=tuple(Interaction(item_id=i, weight=1.0) for i in rng.sample(items, 5))
        )
        for user in user_ids()
    ]
