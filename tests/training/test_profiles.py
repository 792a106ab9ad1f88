"""User profiles from ratings: each user's most recent rows, weight = rating, written as Profile JSON."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import redis
import typer
from typer.testing import CliRunner

from contract.keys import Keys
from contract.profiles import Profile
from contract.settings import Settings
from training.cli import register
from training.data import Ratings
from training.profiles import profiles_from_ratings, write_profiles
from training.split import unseen_after
from training.validation import PublishError

RATINGS = """user_id,book_id,rating
2,33,4
1,10,5
2,4081,3
1,11,1
2,128,5
1,12,2
2,15,2
"""


def _csv(tmp_path: Path, text: str, name: str = "ratings.csv.gz") -> Path:
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return path


def test_profiles_keep_each_users_most_recent_rows_in_order(tmp_path: Path) -> None:
    profiles = {p.user_id: p for p in profiles_from_ratings(_csv(tmp_path, RATINGS), max_per_user=3)}
    assert set(profiles) == {"1", "2"}
    assert [(i.item_id, i.weight) for i in profiles["2"].interactions] == [
        ("4081", 3.0),
        ("128", 5.0),
        ("15", 2.0),
    ]
    assert [(i.item_id, i.weight) for i in profiles["1"].interactions] == [
        ("10", 5.0),
        ("11", 1.0),
        ("12", 2.0),
    ]


def test_profiles_as_of_a_history_share_leave_out_what_the_holdout_holds(tmp_path: Path) -> None:
    path = _csv(tmp_path, RATINGS)
    # User 2 has 4 rows: the first 50% is 2 of them; user 1 has 3: floor(1.5) = 1 row.
    early = {p.user_id: [i.item_id for i in p.interactions] for p in profiles_from_ratings(path, history=0.5)}
    assert early == {"2": ["33", "4081"], "1": ["10"]}
    assert len(list(profiles_from_ratings(path, history=0.3))) == 1  # user 1 had no rating yet (floor 0.9)
    held = unseen_after(
        Ratings(
            *(
                np.array(c)
                for c in ([2, 1, 2, 1, 2, 1, 2], [33, 10, 4081, 11, 128, 12, 15], [4, 5, 3, 1, 5, 2, 2])
            )
        ),
        0.5,
    )
    later = {(str(u), str(b)) for u, b in zip(held.user_ids.tolist(), held.book_ids.tolist(), strict=True)}
    assert later == {("2", "128"), ("2", "15"), ("1", "11"), ("1", "12")}
    assert not later & {(user, item) for user, items in early.items() for item in items}


def test_write_profiles_stores_profile_json_per_user(
    redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    profiles = list(profiles_from_ratings(_csv(tmp_path, RATINGS), max_per_user=2))
    assert write_profiles(redis_client, keys, profiles, chunk_size=1) == {"1", "2"}
    stored = Profile.model_validate_json(redis_client.get(keys.profile("2")) or b"")
    assert stored == profiles[1] and [i.item_id for i in stored.interactions] == ["128", "15"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user_id,book_id,rating\n1,2,6\n", "row 1: rating 6 is outside 1..5"),
        ("user_id,book_id,rating\n1,2,3\n1,3,0\n", "row 2: rating 0"),
        ("user_id,book_id\n1,2\n", "not a user_id,book_id,rating CSV"),
        ("user_id,book_id,rating\n1,x,3\n", "not a user_id,book_id,rating CSV"),
        ("user_id,book_id,rating\n1,,3\n", "row 1: book_id is empty"),
    ],
)
def test_bad_ratings_are_refused_naming_the_row(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PublishError, match=message):
        list(profiles_from_ratings(_csv(tmp_path, text)))


def test_goodbooks_ratings_give_one_profile_per_user(settings: Settings) -> None:
    # The shared data: 50,768 users; each profile holds at most the cap, weights are ratings 1..5.
    count = 0
    for profile in profiles_from_ratings(settings.data_dir / "ratings.csv.gz", max_per_user=5):
        count += 1
        assert 1 <= len(profile.interactions) <= 5
        assert all(1 <= i.weight <= 5 for i in profile.interactions)
    assert count == 50_768


def test_a_replacing_load_leaves_exactly_its_own_profiles(
    settings: Settings, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    app = typer.Typer()
    register(app)
    env = {"LOCKSTEP_REDIS_URL": settings.redis_endpoint, "LOCKSTEP_KEY_PREFIX": settings.key_prefix}
    path = str(_csv(tmp_path, RATINGS))

    def load(*args: str) -> str:
        result = CliRunner().invoke(app, ["profiles", "load", "--ratings", path, *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def stored() -> dict[str, list[str]]:
        found = {}
        for key in redis_client.scan_iter(match=keys.profile("*")):
            profile = Profile.model_validate_json(redis_client.get(key) or b"")
            found[profile.user_id] = [i.item_id for i in profile.interactions]
        # The index the explorer lists users from names exactly the stored profiles.
        assert {u.decode() for u in redis_client.zrange(keys.profile_users(), 0, -1)} == set(found)
        return found

    load()  # every rating
    assert stored() == {"1": ["10", "11", "12"], "2": ["33", "4081", "128", "15"]}
    # As of 30%, user 1 had no rating yet: an upserting load keeps the full profile it had (the leak)...
    assert "wrote 1 profiles" in load("--history", "0.3")
    assert stored()["1"] == ["10", "11", "12"]
    # ...a replacing one deletes it, and rewrites user 2 as of 30%.
    output = load("--history", "0.3", "--replace")
    assert "deleted 1 profiles" in output
    assert stored() == {"2": ["33"]}
    assert "deleted 0 profiles" in load("--history", "0.3", "--replace")  # nothing left to delete
