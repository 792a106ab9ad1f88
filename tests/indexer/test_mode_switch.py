"""Mode per type: one type shadow, another incremental; switching a type only when asked, safely."""

from __future__ import annotations

import numpy as np
import pytest
from indexer_support import CATALOG_SIZE, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import IndexedLocation, Mode, live_index
from contract.settings import Settings
from indexer.errors import ModeConflictError
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from search import engine
from search.requests import VersionedKnnQuery

A = make_type("mode-a-d8")
B = make_type("mode-b-d8")


def _location(runner: Runner, type_name: str) -> IndexedLocation:
    info = runner.orchestrator.type_info(type_name)
    return next(x for x in info.indexed if x.version == info.in_use)


def _answers(client: OpenSearch, location: IndexedLocation) -> None:
    """A versioned k-NN query at `location` finds 10 items, all of its version."""
    query = VersionedKnnQuery(location, A.similarity, np.ones(A.dim).tolist(), 10, source_fields=())
    hits = engine.knn_search(client, query)
    assert len(hits) == 10 and {h.version for h in hits} == {location.version}


def test_types_keep_their_mode_and_switch_only_when_asked(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    settings = orchestrator
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)
    try:
        for etype in (A, B):
            wait_latest(settings, etype.name, publish_version(etype, 1))
        runner.shadow([A.name])
        runner.incremental([B.name])
        assert _location(runner, A.name).mode is Mode.SHADOW
        assert _location(runner, B.name).mode is Mode.INCREMENTAL

        # Unnamed, a cycle takes only its own mode's types; named, the other mode's type is an error.
        assert [r.type_name for r in runner.shadow().results] == [A.name]
        (live,) = runner.incremental().results
        assert [t.type_name for t in live.types] == [B.name]
        with pytest.raises(ModeConflictError, match=f"{A.name}.*shadow.*--switch-mode"):
            runner.incremental([A.name])
        with pytest.raises(ModeConflictError, match=f"{B.name}.*incremental"):
            runner.shadow([B.name])

        # Switch A to incremental: in_use is re-indexed into the live index and re-recorded there;
        # the shadow index stays, so a request routed to it before the switch still gets its version.
        old = _location(runner, A.name)
        runner.incremental([A.name], switch=True)
        new = _location(runner, A.name)
        assert new.mode is Mode.INCREMENTAL and new.index == live_index(settings.index_prefix)
        assert new.version == old.version
        _answers(opensearch_client, old)
        _answers(opensearch_client, new)
        assert _location(runner, B.name).mode is Mode.INCREMENTAL  # B's slots untouched

        # And back: a fresh shadow build of the same version becomes its location.
        runner.shadow([A.name], switch=True)
        back = _location(runner, A.name)
        assert back.mode is Mode.SHADOW and back.version == old.version
        _answers(opensearch_client, back)
        _answers(opensearch_client, new)
    finally:
        runner.close()
