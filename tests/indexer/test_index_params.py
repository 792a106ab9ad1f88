"""Per-type index parameters: a type's own HNSW settings and encoder reach its index and its recall gate."""

from __future__ import annotations

import pytest
from indexer_support import RunnerFactory, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Slot, items_alias, vector_field
from contract.settings import Settings
from contract.types import MIN_CANDIDATES, Encoder, IndexParams

pytestmark = pytest.mark.anyio


async def test_a_quantized_type_with_its_own_graph_builds_passes_the_gate_and_reports_its_parameters(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    params = IndexParams(m=12, ef_construction=64, ef_search=300, encoder=Encoder.SQ7, candidates=400)
    tuned = make_type("sq-d8", index=params)
    plain = make_type("plain-d8")
    for etype in (tuned, plain):
        await wait_latest(orchestrator, etype.name, publish_version(etype, 1))
    runner = make_runner(orchestrator)
    results = {r.type_name: r for r in (await runner.shadow()).results}
    assert results["sq-d8"].promoted and results["sq-d8"].recall >= orchestrator.recall_floor
    assert results["sq-d8"].recall_params == {
        "m": 12,
        "ef_construction": 64,
        "ef_search": 400,  # never narrower than the candidates
        "encoder": "sq7",
        "candidates": 400,
        "queries": "user vectors",
    }
    # The other type keeps the settings' parameters: tuning one touches no other.
    assert results["plain-d8"].recall_params == {
        "m": orchestrator.hnsw_m,
        "ef_construction": orchestrator.hnsw_ef_construction,
        "ef_search": max(orchestrator.serving_ef_search, MIN_CANDIDATES),  # what serving would ask
        "encoder": "float",
        "candidates": MIN_CANDIDATES,
        "queries": "user vectors",
    }
    mappings = opensearch_client.indices.get_mapping(index=items_alias(orchestrator.index_prefix, "sq-d8"))
    (mapping,) = mappings.values()
    method = mapping["mappings"]["properties"][vector_field("sq-d8", Slot.A)]["method"]
    assert method["parameters"]["m"] == 12 and method["parameters"]["ef_construction"] == 64
    assert method["parameters"]["encoder"] == {"name": "sq", "parameters": {"bits": 7}}


async def test_a_quantized_types_confidence_interval_reaches_its_mapping_and_the_gate_reports_it(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    params = IndexParams(m=12, ef_construction=64, encoder=Encoder.SQ7, candidates=200, confidence_interval=0)
    etype = make_type("sq-dyn-d8", index=params)
    await wait_latest(orchestrator, etype.name, publish_version(etype, 1))
    (result,) = (await make_runner(orchestrator).shadow()).results
    assert result.promoted and result.recall >= orchestrator.recall_floor
    assert result.recall_params["confidence_interval"] == 0
    mappings = opensearch_client.indices.get_mapping(index=items_alias(orchestrator.index_prefix, etype.name))
    (mapping,) = mappings.values()
    method = mapping["mappings"]["properties"][vector_field(etype.name, Slot.A)]["method"]
    assert method["parameters"]["encoder"] == {
        "name": "sq",
        "parameters": {"bits": 7, "confidence_interval": 0.0},
    }
