"""`lockstep catalog`: load files after checking every item, the news example end to end, schema refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from contract.keys import Keys
from contract.settings import Settings

LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BOOK = {"title": "A Book", "authors": ["Someone"], "year": 2001, "language": "en", "tags": ["fantasy"]}


def _run(settings: Settings, *args: str, schema: str = "goodbooks") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
        "LOCKSTEP_CATALOG_SCHEMA": str(EXAMPLES / schema / "schema.yaml"),
        "COLUMNS": "200",
    }
    return subprocess.run([LOCKSTEP, "catalog", *args], env=env, capture_output=True, text=True, timeout=300)


def _jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return path


def test_load_writes_every_item_or_none(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, keys: Keys
) -> None:
    docs = [{"item_id": str(n), **BOOK} for n in range(1, 1101)]
    bad = _jsonl(tmp_path / "bad.jsonl", [*docs[:700], {"item_id": "x", **BOOK, "year": "1999"}, *docs[700:]])
    refused = _run(settings, "load", str(bad))
    assert refused.returncode == 1
    assert f"{bad} line 701: item 'x': field 'year': must be an integer" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert not redis_client.exists(keys.catalog_ids(), keys.catalog_changes())

    loaded = _run(settings, "load", str(_jsonl(tmp_path / "good.jsonl", docs)))
    assert loaded.returncode == 0, loaded.stderr
    assert "1100 items written" in loaded.stdout
    assert redis_client.scard(keys.catalog_ids()) == 1100

    shown = _run(settings, "show", "7", "nope")
    assert json.loads(shown.stdout) == {"item_id": "7", **BOOK} and "no item 'nope'" in shown.stderr
    deleted = _run(settings, "delete", "7", "8", "nope")
    assert "2 of 3 items deleted" in deleted.stdout
    status = _run(settings, "status")
    assert "1098" in status.stdout and "goodbooks" in status.stdout


def test_the_news_example_synthesises_loads_and_refuses_another_schema(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, keys: Keys
) -> None:
    made = _run(
        settings,
        "synth",
        "--items",
        "300",
        "--users",
        "20",
        "--dim",
        "8",
        "--out",
        str(tmp_path),
        schema="news",
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "v0" / "items.npz").exists() and (tmp_path / "v1" / "users.npz").exists()
    loaded = _run(settings, "load", str(tmp_path / "items.jsonl"), schema="news")
    assert loaded.returncode == 0, loaded.stderr
    assert redis_client.scard(keys.catalog_ids()) == 300
    stored = json.loads(_run(settings, "show", "n0000001", schema="news").stdout)
    assert stored["region"] and stored["published_at"].endswith("Z")

    # The same key prefix under the goodbooks schema: refused, nothing written.
    other = _jsonl(tmp_path / "books.jsonl", [{"item_id": "b1", **BOOK}])
    refused = _run(settings, "load", str(other))
    assert refused.returncode == 1
    assert (
        "written with item schema 'news'" in refused.stderr
        and "this process has 'goodbooks'" in refused.stderr
    )
    assert not redis_client.exists(keys.catalog_item("b1"))


def test_goodbooks_refuses_under_another_schema(settings: Settings) -> None:
    refused = _run(settings, "goodbooks", "--limit", "5", schema="news")
    assert refused.returncode == 1 and "LOCKSTEP_CATALOG_SCHEMA" in refused.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_reads_csv_and_parquet(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, keys: Keys, suffix: str
) -> None:
    path = tmp_path / f"items{suffix}"
    if suffix == ".csv":
        path.write_text("item_id,title,authors,year,tags\n1,One,A|B,2001,fantasy\n2,Two,C,,\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "item_id": ["1", "2"],
                "title": ["One", "Two"],
                "authors": [["A", "B"], ["C"]],
                "year": [2001, None],
            }
        )
        pq.write_table(table, path)
    loaded = _run(settings, "load", str(path))
    assert loaded.returncode == 0, loaded.stderr
    first = json.loads(_run(settings, "show", "1").stdout)
    assert first["authors"] == ["A", "B"] and first["year"] == 2001
    assert "year" not in json.loads(_run(settings, "show", "2").stdout)
