"""The search port on the real server, as the indexer and as serving build it: every method of SearchEngine.

Bulk checks, slot updates, alias swaps, digests, build markers, templates, clearing fields, error mapping.
(Searches and their scores: test_search_knn.py and test_search_scores.py, on the same two builds.)
"""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch
from search_support import V1, V2, IndexFactory, embedding_type, location

from contract.indexing import Slot, vector_field, version_field
from contract.settings import Settings
from contract.types import Similarity
from search.client import build_client
from search.errors import IndexNotFound, QueryRejected, SearchRejected, SearchUnavailable
from search.port import SearchEngine
from search.requests import (
    ItemDocument,
    SlotVector,
    VersionedKnnQuery,
    alias_swap_body,
    clear_slot_action,
    delete_action,
    holding_any_body,
    index_action,
    lacking_query,
    update_action,
)
from search.results import id_digest, parse_alias_targets
from search.templates import install_items_template, vector_slot_mappings

pytestmark = pytest.mark.anyio


async def test_bulk_reports_each_failed_item_with_its_reason(
    search: SearchEngine, items_index: IndexFactory
) -> None:
    etype = embedding_type(3)
    index = await items_index("bulk", [etype])
    good = [
        index_action(
            index,
            ItemDocument(f"g{i}", {"year": 2000 + i}, (SlotVector.of(etype.name, Slot.A, V1, [1, 0, i]),)),
        )
        for i in range(5)
    ]
    bad_dim = index_action(
        index, ItemDocument("bad-dim", {}, (SlotVector.of(etype.name, Slot.A, V1, [1.0, 2.0]),))
    )
    bad_type = index_action(index, ItemDocument("bad-year", {"year": "nineteen"}))
    report = await search.bulk_write([*good, bad_dim, bad_type], refresh=True)
    assert not report.ok
    assert sorted(report.succeeded) == [f"g{i}" for i in range(5)]
    assert set(report.failed) == {"bad-dim", "bad-year"}
    assert report.failed["bad-dim"].startswith("400 ")
    assert "dimension" in report.failed["bad-dim"].lower()
    assert "year" in report.failed["bad-year"]
    assert await search.count(index) == 5


async def test_update_fills_the_other_slot_and_keeps_the_first(
    search: SearchEngine, items_index: IndexFactory
) -> None:
    etype = embedding_type(2, Similarity.COSINE)
    index = await items_index("slots", [etype])
    a = SlotVector.of(etype.name, Slot.A, V1, [1.0, 0.0])
    b = SlotVector.of(etype.name, Slot.B, V2, [0.0, 1.0])
    assert (await search.bulk_write([index_action(index, ItemDocument("x", {"language": "eng"}, (a,)))])).ok
    report = await search.bulk_write(
        [
            update_action(index, ItemDocument("x", {"year": 1999}, (b,))),
            update_action(index, ItemDocument("y", {}, (b,))),
        ],
        refresh=True,
    )
    assert report.ok, report.failed
    docs = await search.get_items(index, ["x", "y"])
    assert docs["x"][version_field(etype.name, Slot.A)] == V1
    assert docs["x"][version_field(etype.name, Slot.B)] == V2
    assert docs["x"]["language"] == "eng" and docs["x"]["year"] == 1999
    assert version_field(etype.name, Slot.A) not in docs["y"]
    hits_a = await search.knn(
        VersionedKnnQuery(location(index, etype, V1, Slot.A), Similarity.COSINE, [1.0, 0.0], k=5)
    )
    hits_b = await search.knn(
        VersionedKnnQuery(location(index, etype, V2, Slot.B), Similarity.COSINE, [1.0, 0.0], k=5)
    )
    assert [h.item_id for h in hits_a] == ["x"]
    assert sorted(h.item_id for h in hits_b) == ["x", "y"]
    assert all(h.score == pytest.approx(0.0, abs=1e-6) for h in hits_b)

    # A slot emptied (no vector of its new version): the document stays, the other slot too.
    vfield, verfield = vector_field(etype.name, Slot.B), version_field(etype.name, Slot.B)
    assert (await search.bulk_write([clear_slot_action(index, "y", vfield, verfield)], refresh=True)).ok
    emptied = (await search.get_items(index, ["y"]))["y"]
    assert emptied.get(vfield) is None and emptied.get(verfield) is None

    deleted = await search.bulk_write(
        [delete_action(index, "y"), delete_action(index, "never-there")], refresh=True
    )
    assert deleted.ok and sorted(deleted.succeeded) == ["never-there", "y"]
    assert await search.count(index) == 1


async def test_alias_swap_is_one_atomic_call_and_moves_the_alias(
    search: SearchEngine, items_index: IndexFactory, settings: Settings
) -> None:
    etype = embedding_type(2)
    first, second = await items_index("swap-v1", [etype]), await items_index("swap-v2", [etype])
    alias = f"{settings.index_prefix}-items-swap"
    assert await search.alias_targets(alias) == []
    assert await search.swap_alias(alias, first) == []
    assert await search.alias_targets(alias) == [first]
    assert await search.swap_alias(alias, second) == [first]
    assert await search.alias_targets(alias) == [second]
    # Swapping to the index it already names is a no-op, not a remove-then-add of itself.
    assert await search.swap_alias(alias, second) == [second]
    assert await search.alias_targets(alias) == [second]
    assert alias_swap_body(alias, second, [first, second]) == {
        "actions": [{"remove": {"index": first, "alias": alias}}, {"add": {"index": second, "alias": alias}}]
    }
    assert await search.index_exists(alias)
    # A query through the alias reaches the new index.
    await search.bulk_write(
        [index_action(second, ItemDocument("s", {}, (SlotVector.of(etype.name, Slot.A, V2, [1.0, 1.0]),)))],
        refresh=True,
    )
    hits = await search.knn(VersionedKnnQuery(location(alias, etype, V2), Similarity.DOT, [1.0, 0.0], k=3))
    assert [h.item_id for h in hits] == ["s"]
    assert await search.alias_targets(f"{settings.index_prefix}-no-such-alias") == []


def test_alias_parse_ignores_error_bodies_and_other_aliases() -> None:
    not_found = {"error": "alias [x] missing", "status": 404}
    assert parse_alias_targets(not_found, "x") == []
    mixed = {
        "i2": {"aliases": {"x": {}}},
        "i1": {"aliases": {"x": {}, "y": {}}},
        "i3": {"aliases": {"y": {}}},
    }
    assert parse_alias_targets(mixed, "x") == ["i1", "i2"]


async def test_id_digest_matches_the_catalog(search: SearchEngine, items_index: IndexFactory) -> None:
    index = await items_index("digest", [embedding_type(2)])
    catalog = [f"item-{i}" for i in range(23)]
    assert (
        await search.bulk_write([index_action(index, ItemDocument(i, {})) for i in catalog], refresh=True)
    ).ok
    n, digest = await search.index_id_digest(index)
    assert (n, digest) == (23, id_digest(reversed(catalog)))
    assert [i async for i in search.iter_item_ids(index, page_size=5)] == sorted(catalog)
    assert id_digest(catalog[:-1]) != digest


def test_id_digest_ignores_order_and_duplicates() -> None:
    assert id_digest(["2", "1", "3"]) == id_digest(["1", "2", "3", "3"])
    assert id_digest(["1", "2"]) != id_digest(["1", "2", "3"])


async def test_ids_lacking_a_version_and_fields_cleared_by_query(
    search: SearchEngine, items_index: IndexFactory
) -> None:
    etype = embedding_type(2)
    index = await items_index("clear", [etype])
    a = [SlotVector.of(etype.name, Slot.A, V1, [1.0, float(i)]) for i in range(6)]
    docs = [ItemDocument(f"d{i}", {}, (a[i],) if i % 2 else ()) for i in range(6)]
    assert (await search.bulk_write([index_action(index, d) for d in docs], refresh=True)).ok
    verfield = version_field(etype.name, Slot.A)
    lacking = [i async for i in search.iter_item_ids(index, lacking_query(verfield, V1), page_size=2)]
    assert lacking == ["d0", "d2", "d4"]
    fields = [vector_field(etype.name, Slot.A), verfield]
    assert await search.count(index, holding_any_body(fields)) == 3
    assert await search.clear_fields(index, fields) == 3
    assert await search.count(index, holding_any_body(fields)) == 0  # refreshed: visible at once
    assert await search.count(index) == 6
    assert await search.clear_fields(index, fields) == 0


async def test_a_bulk_load_build_is_invisible_until_finished_and_keeps_its_marker(
    search: SearchEngine, settings: Settings, opensearch_client: OpenSearch
) -> None:
    etype = embedding_type(2)
    index = f"{settings.index_prefix}-items-build"
    await install_items_template(search, settings)
    slots = vector_slot_mappings(etype, settings, (Slot.A,))
    await search.create_index(index, slots, settings.hnsw_ef_search, build_meta={"lockstep": {"state": "b"}})
    assert await search.list_indices(f"{settings.index_prefix}-items-*") == [index]
    vectors = [SlotVector.of(etype.name, Slot.A, V1, [1.0, float(i)]) for i in range(4)]
    actions = [index_action(index, ItemDocument(f"i{i}", {}, (v,))) for i, v in enumerate(vectors)]
    assert (await search.bulk_write(actions)).ok
    assert await search.count(index) == 0  # no refresh while building
    assert len(await search.get_items(index, ["i0", "i3"])) == 2  # real-time reads see it all the same
    await search.finish_build(index)
    assert await search.count(index) == 4
    await search.force_merge(index)
    segments = opensearch_client.indices.segments(index=index)["indices"][index]["shards"]["0"]
    assert sum(len(copy["segments"]) for copy in segments) == 1
    await search.set_index_meta(index, {"lockstep": {"state": "verified"}})
    mapping = opensearch_client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["_meta"] == {"lockstep": {"state": "verified"}}
    assert await search.delete_index(index)
    assert await search.list_indices(f"{settings.index_prefix}-items-*") == []


async def test_refresh_makes_writes_visible(search: SearchEngine, items_index: IndexFactory) -> None:
    index = await items_index("refresh", [embedding_type(2)])
    assert (await search.bulk_write([index_action(index, ItemDocument("r", {}))])).ok
    await search.refresh(index)
    assert await search.count(index) == 1


async def test_errors_are_mapped_to_our_exceptions(
    search: SearchEngine, items_index: IndexFactory, settings: Settings
) -> None:
    etype = embedding_type(3)
    index = await items_index("errors", [etype])
    wrong_dim = VersionedKnnQuery(location(index, etype, V1), Similarity.DOT, [1.0, 2.0], k=1)
    with pytest.raises(SearchRejected) as rejected:
        await search.knn(wrong_dim)
    assert rejected.value.status == 400
    assert isinstance(rejected.value, QueryRejected)
    assert "dimension" in rejected.value.reason.lower()
    assert isinstance(rejected.value.__cause__, Exception)

    missing = VersionedKnnQuery(
        location(f"{settings.index_prefix}-items-missing", etype, V1), Similarity.DOT, [1.0, 2.0, 3.0], k=1
    )
    with pytest.raises(IndexNotFound):
        await search.knn(missing)
    assert not await search.delete_index(missing.location.index)

    dead = build_client(settings.model_copy(update={"opensearch_url": "http://127.0.0.1:9"}), timeout=0.5)
    try:
        with pytest.raises(SearchUnavailable, match="unreachable"):
            await dead.knn(
                VersionedKnnQuery(location(index, etype, V1), Similarity.DOT, [1.0, 2.0, 3.0], k=1)
            )
        report = await dead.bulk_write(
            [index_action(index, ItemDocument("a", {}))], max_retries=1, backoff_seconds=0.01
        )
        assert list(report.failed) == ["a"] and report.retries == 1
        assert not await dead.ping()
    finally:
        await dead.aclose()


async def test_client_from_settings_talks_to_the_stack(
    search: SearchEngine, opensearch_client: OpenSearch
) -> None:
    assert await search.ping()
    assert opensearch_client.info()["version"]["number"].startswith("3.6")
