"""Vector files (.npz, .npy + ids, .parquet) and the `lockstep publish` command: errors name file and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
import typer
from publish_support import DIM, snapshot, stored_count
from typer.testing import CliRunner

from contract.keys import Keys, Kind
from contract.settings import Settings
from training import cli
from training.publish import read_manifest
from training.validation import PublishError
from training.vector_files import ids_file, read_vectors

IDS = ["1", "2", "3"]
MATRIX = np.arange(3 * DIM, dtype=np.float32).reshape(3, DIM) + 1


def _npz(path: Path, ids: list[str] = IDS, matrix: np.ndarray = MATRIX) -> Path:
    np.savez(path, ids=np.array(ids), vectors=matrix)
    return path


def _parquet(path: Path, ids: list[str | None], rows: list[list[float] | None]) -> Path:
    pq.write_table(
        pa.table({"id": pa.array(ids, pa.string()), "vector": pa.array(rows, pa.list_(pa.float32()))}), path
    )
    return path


def test_the_three_formats_read_the_same_vectors(tmp_path: Path) -> None:
    npy = tmp_path / "items.npy"
    np.save(npy, MATRIX)
    ids_file(npy).write_text("\n".join(IDS) + "\n")
    parquet = _parquet(tmp_path / "items.parquet", list(IDS), MATRIX.tolist())
    for path in (_npz(tmp_path / "items.npz"), npy, parquet):
        vs = read_vectors(path)
        assert vs.ids == tuple(IDS) and vs.source == str(path)
        np.testing.assert_array_equal(vs.matrix, MATRIX)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.npz", "missing.npz: no such file"),
        (lambda d: (d / "v.csv").write_text("x") and d / "v.csv", "unknown format '.csv'"),
        (lambda d: (np.savez(d / "a.npz", vectors=MATRIX), d / "a.npz")[1], "missing array.*ids"),
        (
            lambda d: (np.savez(d / "o.npz", ids=np.array([1, 2, 3]), vectors=MATRIX), d / "o.npz")[1],
            "string array",
        ),
        (lambda d: (np.save(d / "m.npy", MATRIX), d / "m.npy")[1], r"m.ids.txt is missing"),
        (lambda d: _parquet(d / "r.parquet", ["1", "2"], [[1.0] * DIM, [1.0] * 3]), "row 1 .*has 3 values"),
        (lambda d: _parquet(d / "n.parquet", ["1", None], [[1.0] * DIM, [1.0] * DIM]), "row 1: id is null"),
        (lambda d: _parquet(d / "v.parquet", ["1", "2"], [[1.0] * DIM, None]), "row 1: vector is null"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(PublishError, match=message):
        read_vectors(path)


@pytest.fixture
def run(settings: Settings) -> object:
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    env = {"LOCKSTEP_REDIS_URL": settings.redis_endpoint, "LOCKSTEP_KEY_PREFIX": settings.key_prefix}
    return lambda *args: runner.invoke(app, list(args), env=env)


def test_publish_command_publishes_and_refuses_bad_files_with_exit_2(
    run: object, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    invoke = run  # type: ignore[assignment]
    ok = invoke(
        "types",
        "register",
        "--name",
        "als-d8",
        "--family",
        "direct-direct",
        "--dim",
        "8",
        "--similarity",
        "dot",
    )
    assert ok.exit_code == 0, ok.output
    users = _npz(tmp_path / "users.npz", ["u1", "u2", "u3"])
    items = _npz(tmp_path / "items.npz")
    bad = MATRIX.copy()
    bad[2, 0] = np.nan
    bad_items = _npz(tmp_path / "bad_items.npz", IDS, bad)
    before = snapshot(redis_client, keys)

    refused = invoke(
        "publish",
        "--type",
        "als-d8",
        "--frame",
        "2017-01-01..2017-07-01",
        "--users",
        str(users),
        "--items",
        str(bad_items),
    )
    assert refused.exit_code == 2
    assert "bad_items.npz: row 2 (id '3') holds NaN" in refused.output.replace("\n", "")
    assert "Traceback" not in refused.output
    assert snapshot(redis_client, keys) == before

    unknown = invoke(
        "publish",
        "--type",
        "nope",
        "--frame",
        "2017-01-01..2017-07-01",
        "--users",
        str(users),
        "--items",
        str(items),
    )
    assert unknown.exit_code == 2 and "unknown embedding type 'nope'" in unknown.output

    done = invoke(
        "publish",
        "--type",
        "als-d8",
        "--frame",
        "2017-01-01..2017-07-01",
        "--users",
        str(users),
        "--items",
        str(items),
        "--trainer",
        "team=search",
    )
    assert done.exit_code == 0, done.output
    manifest = read_manifest(redis_client, keys, "als-d8", "20170101T000000Z-20170701T000000Z")
    assert manifest is not None and manifest.trainer == {"team": "search"} and manifest.counts.item == 3
    assert stored_count(redis_client, keys, "als-d8", manifest.version, Kind.USER) == 3

    listed = invoke("versions", "list")
    assert listed.exit_code == 0 and "20170101T000000Z-2017" in listed.output.replace("\n", "")
    redis_client.set(keys.in_use("als-d8"), manifest.version)
    in_use = invoke("versions", "delete", "--type", "als-d8", "--version", manifest.version)
    assert in_use.exit_code == 2 and "in use" in in_use.output
