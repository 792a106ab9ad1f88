"""The items template and vector-slot mappings, installed on the real OpenSearch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opensearchpy import OpenSearch
from search_support import embedding_type

from contract.indexing import Mode, Slot, vector_field, version_field
from contract.items import FieldKind, FieldSpec, load_schema, schema, using_schema
from contract.settings import Settings
from contract.types import Similarity
from search.errors import TemplateMismatch, UnsupportedEngine
from search.port import SearchEngine
from search.requests import BulkAction
from search.templates import (
    TEMPLATE_PATH,
    IndexLayout,
    install_items_template,
    items_template,
    knn_vector_mapping,
    layout_of,
    metadata_mapping,
    require_lucene,
    template_name,
    template_problems,
    vector_slot_mappings,
)

NEWS = Path(__file__).resolve().parents[2] / "examples" / "news" / "schema.yaml"


@pytest.mark.anyio
async def test_template_installs_validates_and_applies_to_new_items_indices(
    search: SearchEngine, opensearch_client: OpenSearch, settings: Settings
) -> None:
    assert await template_problems(search, settings) == [
        f"index template '{settings.index_prefix}-items' is not installed"
    ]
    await install_items_template(search, settings)
    assert await template_problems(search, settings) == []

    etype = embedding_type(dim=8, similarity=Similarity.COSINE)
    index = f"{settings.index_prefix}-items-live"
    await search.create_index(index, vector_slot_mappings(etype, settings), settings.hnsw_ef_search)
    mapping = opensearch_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    for name in schema().kinds():
        assert name in mapping["properties"]
    assert mapping["properties"]["average_rating"]["type"] == "double"
    for slot in Slot:
        vec = mapping["properties"][vector_field(etype.name, slot)]
        assert vec["type"] == "knn_vector"
        assert vec["dimension"] == 8
        assert vec["method"]["engine"] == "lucene"
        assert vec["method"]["space_type"] == "cosinesimil"
        assert vec["method"]["parameters"] == {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
        }
        assert mapping["properties"][version_field(etype.name, slot)]["type"] == "keyword"
    index_settings = opensearch_client.indices.get_settings(index=index, flat_settings=True)[index][
        "settings"
    ]
    assert index_settings["index.knn"] == "true"
    assert index_settings["index.knn.algo_param.ef_search"] == str(settings.hnsw_ef_search)
    assert index_settings["index.number_of_replicas"] == "0"

    # Strict mappings: a field nobody declared is refused instead of silently mapped.
    report = await search.bulk_write(
        [BulkAction("1", {"index": {"_index": index, "_id": "1"}}, {"item_id": "1", "colour": "red"})],
    )
    assert not report.ok
    assert "strict_dynamic_mapping_exception" in report.failed["1"]

    # A second type joins the live index later.
    other = embedding_type(dim=3, similarity=Similarity.L2, name="tags-d3")
    await search.add_vector_slots(index, vector_slot_mappings(other, settings, [Slot.B]))
    mapping = opensearch_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"][vector_field(other.name, Slot.B)]["method"]["space_type"] == "l2"
    assert vector_field(other.name, Slot.A) not in mapping["properties"]
    assert await search.index_exists(index)
    assert await search.delete_index(index)
    assert not await search.index_exists(index)
    assert not await search.delete_index(index)


@pytest.mark.anyio
async def test_validation_reports_a_drifted_template(
    search: SearchEngine, opensearch_client: OpenSearch, settings: Settings
) -> None:
    body = items_template(settings)
    body["template"]["mappings"]["properties"]["year"] = {"type": "keyword"}
    body["template"]["settings"]["index"]["knn.algo_param.ef_search"] = 17
    opensearch_client.indices.put_index_template(name=template_name(settings.index_prefix), body=body)
    problems = await template_problems(search, settings)
    assert any("'year'" in p and "'integer'" in p for p in problems), problems
    assert any("ef_search is 17" in p for p in problems), problems


@pytest.mark.anyio
async def test_shards_and_replicas_come_from_the_settings_per_index_kind(
    search: SearchEngine, opensearch_client: OpenSearch, settings: Settings
) -> None:
    laid_out = settings.model_copy(
        update={"shadow_shards": 3, "shadow_replicas": 2, "live_shards": 2, "live_replicas": 1}
    )
    assert layout_of(laid_out, Mode.SHADOW) == IndexLayout(3, 2)
    assert layout_of(laid_out, Mode.INCREMENTAL) == IndexLayout(2, 1)
    index = items_template(laid_out)["template"]["settings"]["index"]
    assert (index["number_of_shards"], index["number_of_replicas"]) == (2, 1)  # the live kind's
    await install_items_template(search, settings)
    assert await template_problems(search, laid_out) == [
        "index.number_of_shards is 1, want 2",
        "index.number_of_replicas is 0, want 1",
    ]
    # An index we create names its own layout; a bulk-load build has no replica until it is finished.
    etype = embedding_type(dim=2)
    built = f"{settings.index_prefix}-items-built"
    await search.create_index(
        built, vector_slot_mappings(etype, settings), 16, build_meta={}, layout=IndexLayout(3, 2)
    )
    flat = opensearch_client.indices.get_settings(index=built, flat_settings=True)[built]["settings"]
    assert (flat["index.number_of_shards"], flat["index.number_of_replicas"]) == ("3", "0")
    assert flat["index.refresh_interval"] == "-1"
    # The live kind: refreshed every second, and a refresh does not wait for lucene to merge what it flushed.
    live = f"{settings.index_prefix}-items-live-kind"
    await search.create_index(live, vector_slot_mappings(etype, settings), 16, layout=IndexLayout(2, 1))
    flat = opensearch_client.indices.get_settings(index=live, flat_settings=True)[live]["settings"]
    assert (flat["index.number_of_shards"], flat["index.number_of_replicas"]) == ("2", "1")
    assert (flat["index.refresh_interval"], flat["index.merge_on_flush.enabled"]) == ("1s", "false")


def test_the_template_file_must_not_fix_the_layout(tmp_path: Path, settings: Settings) -> None:
    data = json.loads(TEMPLATE_PATH.read_text())
    assert "number_of_shards" not in data["template"]["settings"]["index"]
    data["template"]["settings"]["index"]["number_of_replicas"] = 1
    bad = tmp_path / "items.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(TemplateMismatch, match="must not fix \\['number_of_replicas'\\]"):
        items_template(settings, bad)


def test_a_template_file_naming_fields_is_refused(tmp_path: Path, settings: Settings) -> None:
    """The metadata mapping comes from the item schema alone: a template file with its own is refused."""
    data = json.loads(TEMPLATE_PATH.read_text())
    data["template"]["mappings"]["properties"] = {"tags": {"type": "keyword"}}
    bad = tmp_path / "items.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(TemplateMismatch, match="come from the item schema"):
        items_template(settings, bad)


def test_the_mapping_follows_the_item_schema(settings: Settings) -> None:
    """Every kind maps to its OpenSearch type; a field that is not filterable is stored but not indexed."""
    news = load_schema(NEWS)
    mapping = metadata_mapping(news)
    assert mapping["published_at"] == {"type": "date", "format": "strict_date_optional_time"}
    assert mapping["paywalled"] == {"type": "boolean"}
    assert mapping["topics"] == {"type": "keyword"} and mapping["title"] == {"type": "text"}
    assert mapping["views"] == {"type": "integer"} and mapping["quality"] == {"type": "double"}
    unfiltered = news.model_copy(
        update={"fields": {**news.fields, "word_count": FieldSpec(type=FieldKind.INTEGER, filterable=False)}}
    )
    assert metadata_mapping(unfiltered)["word_count"] == {"type": "integer", "index": False}
    with using_schema(news):
        body = items_template(settings)
    assert body["template"]["mappings"]["properties"] == mapping
    assert body["template"]["mappings"]["_meta"] == {
        "item_schema": "news",
        "schema_fingerprint": news.fingerprint(),
    }


@pytest.mark.parametrize("engine", ["faiss", "nmslib", "Lucene", ""])
def test_non_lucene_engines_are_refused(engine: str, settings: Settings) -> None:
    with pytest.raises(UnsupportedEngine, match="use 'lucene'"):
        require_lucene(engine)
    with pytest.raises(UnsupportedEngine):
        knn_vector_mapping(4, Similarity.DOT, settings, engine=engine)
    with pytest.raises(UnsupportedEngine):
        vector_slot_mappings(embedding_type(), settings, engine=engine)


@pytest.mark.parametrize(
    ("similarity", "space"),
    [(Similarity.DOT, "innerproduct"), (Similarity.COSINE, "cosinesimil"), (Similarity.L2, "l2")],
)
def test_space_type_follows_the_model_similarity(
    similarity: Similarity, space: str, settings: Settings
) -> None:
    assert knn_vector_mapping(5, similarity, settings)["method"]["space_type"] == space
