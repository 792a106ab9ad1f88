"""The scale benchmark's pure parts: vector memory from segment file sizes, the sq7 ratios, its checks."""

from __future__ import annotations

from typing import Any

import pytest

from bench.scale import _checks, index_params, memory_ratios, quantized_params, vector_bytes, without_merges
from contract.settings import Settings
from contract.types import Encoder, IndexParams


def _sizes(**files: int) -> dict[str, dict[str, Any]]:
    # The shape of `_stats?include_segment_file_sizes=true`'s segments.file_sizes on OpenSearch 3.6.
    return {ext: {"size_in_bytes": size, "description": "Others"} for ext, size in files.items()}


def test_a_search_needs_the_graph_and_the_vectors_it_scores() -> None:
    floats = vector_bytes(_sizes(vec=25_600_000, vex=7_000_000, fdt=1_000))
    assert floats == {
        "float_vectors_bytes": 25_600_000,
        "quantized_vectors_bytes": 0,
        "graph_bytes": 7_000_000,
        "search_memory_bytes": 32_600_000,
    }
    # sq7 keeps the float vectors too (rescoring, merges), but a search walks the quantized ones.
    quantized = vector_bytes(_sizes(vec=25_600_000, veq=6_800_000, vex=7_000_000))
    assert quantized["search_memory_bytes"] == 13_800_000
    assert vector_bytes({})["search_memory_bytes"] == 0


def test_sq7_ratios_against_float32() -> None:
    floats = {**vector_bytes(_sizes(vec=256_000, vex=64_000)), "index_bytes": 400_000}
    quantized = {**vector_bytes(_sizes(vec=256_000, veq=68_000, vex=64_000)), "index_bytes": 470_000}
    assert memory_ratios(floats, quantized) == {"search_memory": 0.412, "vectors": 0.266, "disk": 1.175}


def _rows(served: float, short: int = 0) -> dict[str, Any]:
    return {
        "selectivity": 1.0,
        "rows": [
            {"ef_search": 100, "served": False, "recall_at_10": 0.99, "answers_short_of_k": 0},
            {"ef_search": 512, "served": True, "recall_at_10": served, "answers_short_of_k": short},
        ],
    }


def test_checks_take_the_served_row_and_count_short_answers_as_a_miss() -> None:
    figures = {
        "build_ratio_vs_raw": 1.1,
        "queries": {"none": _rows(0.96), "~5%": _rows(0.94)},
        "quantized": {"queries": {"none": _rows(0.97), "~5%": _rows(0.99, short=1)}},
        "memory_ratios": {"search_memory": 0.45, "vectors": 0.27, "disk": 1.2},
        "serving": {"p50_ratio": 1.4},
        "churn": {"p50_growth": 1.1},
    }
    verdicts = {c["check"]: c["pass"] for c in _checks("100000x64", figures)}
    assert verdicts == {
        "100000x64 shadow build vs raw bulk+merge": True,
        "100000x64 serving p50 vs the raw k-NN query it sends": False,
        "100000x64 churn: p50 after the last round vs before": True,
        "100000x64 sq7 search memory (quantized vectors + graph) vs float32": False,
        "100000x64 float recall@10 vs exact, k results, filter none": True,
        "100000x64 float recall@10 vs exact, k results, filter ~5%": False,  # 0.99 off the served row
        "100000x64 sq7 recall@10 vs exact, k results, filter none": True,
        "100000x64 sq7 recall@10 vs exact, k results, filter ~5%": False,  # one answer short of k
    }


def test_index_params_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKSTEP_SCALE_M", "24")
    monkeypatch.setenv("LOCKSTEP_SCALE_EF_CONSTRUCTION", "300")
    monkeypatch.delenv("LOCKSTEP_SCALE_EF_SEARCH", raising=False)
    params = index_params()
    assert (params.m, params.ef_construction, params.encoder) == (24, 300, Encoder.FLOAT)
    assert params.ef_search is not None  # the scale default, not serving's global one


def test_the_quantized_type_takes_its_own_m_and_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    params = IndexParams(m=32, ef_construction=256, ef_search=1024)
    monkeypatch.delenv("LOCKSTEP_SCALE_SQ7_M", raising=False)
    monkeypatch.delenv("LOCKSTEP_SCALE_SQ7_CANDIDATES", raising=False)
    monkeypatch.delenv("LOCKSTEP_SCALE_SQ7_CONFIDENCE_INTERVAL", raising=False)
    chosen = quantized_params(params)  # the configuration measured at 1M
    assert (chosen.encoder, chosen.m, chosen.candidates, chosen.ef_search) == (Encoder.SQ7, 16, 300, 1024)
    assert chosen.confidence_interval == 0
    monkeypatch.setenv("LOCKSTEP_SCALE_SQ7_M", "24")
    monkeypatch.setenv("LOCKSTEP_SCALE_SQ7_CANDIDATES", "1000")
    monkeypatch.setenv("LOCKSTEP_SCALE_SQ7_CONFIDENCE_INTERVAL", "lucene")
    own = quantized_params(params)
    assert (own.encoder, own.m, own.candidates, own.ef_construction) == (Encoder.SQ7, 24, 1000, 256)
    assert own.confidence_interval is None
    monkeypatch.setenv("LOCKSTEP_SCALE_SQ7_CONFIDENCE_INTERVAL", "0.95")
    assert quantized_params(params).confidence_interval == 0.95


def test_the_incremental_rounds_run_with_the_live_merges_at_their_loosest_limits() -> None:
    fields = Settings.model_fields
    loose = without_merges(Settings(development=True))
    # The settings' own upper bounds: no merge or expunge can start, whatever the index's shape.
    assert loose.live_max_segments == _bound(fields["live_max_segments"].metadata)
    assert loose.live_max_deleted_ratio == _bound(fields["live_max_deleted_ratio"].metadata)


def _bound(metadata: list[object]) -> float:
    return next(float(m.le) for m in metadata if getattr(m, "le", None) is not None)  # type: ignore[attr-defined]
