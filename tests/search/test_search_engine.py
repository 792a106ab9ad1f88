"""Engine I/O on the real server: bulk checks, slot updates, alias swaps, digests, error mapping."""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch
from search_support import V1, V2, IndexFactory, embedding_type, location

from contract.indexing import Slot, version_field
from contract.settings import Settings
from contract.types import Similarity
from search.engine import (
    alias_targets,
    build_client,
    bulk_write,
    count,
    get_items,
    id_digest,
    index_id_digest,
    iter_item_ids,
    knn_search,
    swap_alias,
)
from search.errors import IndexNotFound, SearchRejected, SearchUnavailable
from search.requests import (
    ItemDocument,
    SlotVector,
    VersionedKnnQuery,
    alias_swap_body,
    delete_action,
    index_action,
    update_action,
)


def test_bulk_reports_each_failed_item_with_its_reason(
    opensearch_client: OpenSearch, items_index: IndexFactory
) -> None:
    etype = embedding_type(3)
    index = items_index("bulk", [etype])
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
    report = bulk_write(opensearch_client, [*good, bad_dim, bad_type], refresh=True)
    assert not report.ok
    assert sorted(report.succeeded) == [f"g{i}" for i in range(5)]
    assert set(report.failed) == {"bad-dim", "bad-year"}
    assert report.failed["bad-dim"].startswith("400 ")
    assert "dimension" in report.failed["bad-dim"].lower()
    assert "year" in report.failed["bad-year"]
    assert count(opensearch_client, index) == 5


def test_update_fills_the_other_slot_and_keeps_the_first(
    opensearch_client: OpenSearch, items_index: IndexFactory
) -> None:
    etype = embedding_type(2, Similarity.COSINE)
    index = items_index("slots", [etype])
    a = SlotVector.of(etype.name, Slot.A, V1, [1.0, 0.0])
    b = SlotVector.of(etype.name, Slot.B, V2, [0.0, 1.0])
    assert bulk_write(
        opensearch_client, [index_action(index, ItemDocument("x", {"language": "eng"}, (a,)))]
    ).ok
    report = bulk_write(
        opensearch_client,
        [
            update_action(index, ItemDocument("x", {"year": 1999}, (b,))),
            update_action(index, ItemDocument("y", {}, (b,))),
        ],
        refresh=True,
    )
    assert report.ok, report.failed
    docs = get_items(opensearch_client, index, ["x", "y"])
    assert docs["x"][version_field(etype.name, Slot.A)] == V1
    assert docs["x"][version_field(etype.name, Slot.B)] == V2
    assert docs["x"]["language"] == "eng" and docs["x"]["year"] == 1999
    assert version_field(etype.name, Slot.A) not in docs["y"]
    hits_a = knn_search(
        opensearch_client,
        VersionedKnnQuery(location(index, etype, V1, Slot.A), Similarity.COSINE, [1.0, 0.0], k=5),
    )
    hits_b = knn_search(
        opensearch_client,
        VersionedKnnQuery(location(index, etype, V2, Slot.B), Similarity.COSINE, [1.0, 0.0], k=5),
    )
    assert [h.item_id for h in hits_a] == ["x"]
    assert sorted(h.item_id for h in hits_b) == ["x", "y"]
    assert all(h.score == pytest.approx(0.0, abs=1e-6) for h in hits_b)

    deleted = bulk_write(
        opensearch_client, [delete_action(index, "y"), delete_action(index, "never-there")], refresh=True
    )
    assert deleted.ok and sorted(deleted.succeeded) == ["never-there", "y"]
    assert count(opensearch_client, index) == 1


def test_alias_swap_is_one_atomic_call_and_moves_the_alias(
    opensearch_client: OpenSearch, items_index: IndexFactory, settings: Settings
) -> None:
    etype = embedding_type(2)
    first, second = items_index("swap-v1", [etype]), items_index("swap-v2", [etype])
    alias = f"{settings.index_prefix}-items-swap"
    assert alias_targets(opensearch_client, alias) == []
    assert swap_alias(opensearch_client, alias, first) == []
    assert alias_targets(opensearch_client, alias) == [first]
    assert swap_alias(opensearch_client, alias, second) == [first]
    assert alias_targets(opensearch_client, alias) == [second]
    assert alias_swap_body(alias, second, [first, second]) == {
        "actions": [{"remove": {"index": first, "alias": alias}}, {"add": {"index": second, "alias": alias}}]
    }
    # A query through the alias reaches the new index.
    bulk_write(
        opensearch_client,
        [index_action(second, ItemDocument("s", {}, (SlotVector.of(etype.name, Slot.A, V2, [1.0, 1.0]),)))],
        refresh=True,
    )
    hits = knn_search(
        opensearch_client, VersionedKnnQuery(location(alias, etype, V2), Similarity.DOT, [1.0, 0.0], k=3)
    )
    assert [h.item_id for h in hits] == ["s"]


def test_id_digest_matches_the_catalog(opensearch_client: OpenSearch, items_index: IndexFactory) -> None:
    index = items_index("digest", [embedding_type(2)])
    catalog = [f"item-{i}" for i in range(23)]
    assert bulk_write(
        opensearch_client, [index_action(index, ItemDocument(i, {})) for i in catalog], refresh=True
    ).ok
    n, digest = index_id_digest(opensearch_client, index)
    assert (n, digest) == (23, id_digest(reversed(catalog)))
    assert list(iter_item_ids(opensearch_client, index, page_size=5)) == sorted(catalog)
    assert id_digest(catalog[:-1]) != digest


def test_errors_are_mapped_to_our_exceptions(
    opensearch_client: OpenSearch, items_index: IndexFactory, settings: Settings
) -> None:
    etype = embedding_type(3)
    index = items_index("errors", [etype])
    wrong_dim = VersionedKnnQuery(location(index, etype, V1), Similarity.DOT, [1.0, 2.0], k=1)
    with pytest.raises(SearchRejected) as rejected:
        knn_search(opensearch_client, wrong_dim)
    assert rejected.value.status == 400
    assert "dimension" in rejected.value.reason.lower()
    assert isinstance(rejected.value.__cause__, Exception)

    missing = VersionedKnnQuery(
        location(f"{settings.index_prefix}-items-missing", etype, V1), Similarity.DOT, [1.0, 2.0, 3.0], k=1
    )
    with pytest.raises(IndexNotFound):
        knn_search(opensearch_client, missing)

    dead = build_client(settings.model_copy(update={"opensearch_url": "http://127.0.0.1:9"}), timeout=0.5)
    with pytest.raises(SearchUnavailable, match="unreachable"):
        knn_search(dead, VersionedKnnQuery(location(index, etype, V1), Similarity.DOT, [1.0, 2.0, 3.0], k=1))
    report = bulk_write(
        dead, [index_action(index, ItemDocument("a", {}))], max_retries=1, backoff_seconds=0.01
    )
    assert list(report.failed) == ["a"] and report.retries == 1


def test_client_from_settings_talks_to_the_stack(settings: Settings) -> None:
    client = build_client(settings)
    assert client.info()["version"]["number"].startswith("3.6")
    client.close()
