"""SIGKILL the shadow indexer at random points: the alias and in_use only ever name verified indices."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from catalog_loading import load_goodbooks
from indexer_support import CATALOG_SIZE, make_type, type_info, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Mode, items_alias, shadow_index
from contract.settings import Settings
from contract.versions import VERSION_ID

KILLS = 10
BATCH = 25  # 12 batches of the 300-item catalog: plenty of distinct places to die in


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
            "LOCKSTEP_INDEX_PREFIX": settings.index_prefix,
            "LOCKSTEP_ORCHESTRATOR_URL": settings.orchestrator_url,
            "LOCKSTEP_OPENSEARCH_PORT": str(settings.opensearch_port),
            "LOCKSTEP_REDIS_PORT": str(settings.redis_port),
            "LOCKSTEP_SLOT_GRACE_SECONDS": str(settings.slot_grace_seconds),
            "LOCKSTEP_INDEXER_LOCK_SECONDS": str(settings.indexer_lock_seconds),
            "LOCKSTEP_INDEXER_STEP_DELAY": "0.02",
        }
    )
    if settings.opensearch_url:
        env["LOCKSTEP_OPENSEARCH_URL"] = settings.opensearch_url
    if settings.redis_url:
        env["LOCKSTEP_REDIS_URL"] = settings.redis_url
    return env


def _command() -> list[str]:
    lockstep = Path(sys.executable).with_name("lockstep")
    return [
        str(lockstep),
        "index",
        "shadow",
        "--batch-size",
        str(BATCH),
        "--lock-wait",
        "30",
    ]


def _assert_invariant(settings: Settings, client: OpenSearch, type_name: str) -> None:
    info = type_info(settings, type_name)
    recorded = {loc.index: loc for loc in info.indexed if loc.mode is Mode.SHADOW}
    alias = items_alias(settings.index_prefix, type_name)
    targets = list(client.indices.get_alias(name=alias)) if client.indices.exists_alias(name=alias) else []
    for index in targets:
        # The alias only ever points at a recorded, complete, verified index.
        assert index in recorded, f"alias points at unrecorded {index}"
        assert client.count(index=index)["count"] == CATALOG_SIZE
        meta = client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]
        assert meta["lockstep"]["state"] == "verified"
    if info.in_use is not None:
        loc = next(loc for loc in info.indexed if loc.version == info.in_use)
        assert client.count(index=loc.index)["count"] == CATALOG_SIZE
        assert (
            client.count(index=loc.index, body={"query": {"term": {loc.version_field: info.in_use}}})["count"]
            == CATALOG_SIZE - 5
        )


def test_sigkill_at_random_points_never_exposes_an_unverified_index(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    # Real time in the subprocesses: a grace of 1 s, so the runs retire old indices too.
    settings = orchestrator.model_copy(update={"slot_grace_seconds": 1.0})
    load_goodbooks(settings, CATALOG_SIZE)
    etype = make_type()
    v1 = publish_version(etype, 1)
    asyncio.run(wait_latest(settings, etype.name, v1))
    rng = random.Random(6)
    env = _env(settings)
    killed_at: list[str] = []
    latest = v1
    for attempt in range(KILLS):
        if attempt == KILLS // 2:
            latest = publish_version(etype, 2)  # later kills also hit the swap/advance path of a new version
            asyncio.run(wait_latest(settings, etype.name, latest))
        proc = subprocess.Popen(
            _command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert proc.stdout is not None
        target = rng.randint(1, 17)
        seen = 0
        where = "end"
        for line in proc.stdout:
            if line.startswith("step "):
                seen += 1
                if seen == target:
                    where = line.split()[1]
                    time.sleep(rng.uniform(0, 0.02))
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at.append(where)
        _assert_invariant(settings, opensearch_client, etype.name)
    assert len(set(killed_at)) >= 3, killed_at  # the kills spread over different phases

    done = subprocess.run(
        _command(),
        env={**env, "LOCKSTEP_INDEXER_STEP_DELAY": "0"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_invariant(settings, opensearch_client, etype.name)
    info = type_info(settings, etype.name)
    assert info.in_use == latest
    alias = items_alias(settings.index_prefix, etype.name)
    assert list(opensearch_client.indices.get_alias(name=alias)) == [
        shadow_index(settings.index_prefix, etype.name, latest)
    ]
    # No partial index survives the completing run: every index of the type is a recorded one.
    own = [
        n
        for n in opensearch_client.indices.get(index=f"{alias}-*")
        if VERSION_ID.match(n[len(alias) + 1 :].upper())
    ]
    assert set(own) <= {loc.index for loc in info.indexed}
