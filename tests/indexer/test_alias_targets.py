"""search.engine's alias reads and swaps, as the shadow indexer uses them, against real OpenSearch."""

from __future__ import annotations

from opensearchpy import OpenSearch

from contract.settings import Settings
from search import engine


def test_missing_alias_has_no_targets(opensearch_client: OpenSearch, settings: Settings) -> None:
    assert engine.alias_targets(opensearch_client, f"{settings.index_prefix}-no-such-alias") == []


def test_swap_moves_alias_and_reports_previous(opensearch_client: OpenSearch, settings: Settings) -> None:
    alias = f"{settings.index_prefix}-items-alias"
    first, second = f"{alias}-one", f"{alias}-two"
    for name in (first, second):
        opensearch_client.indices.create(index=name)
    assert engine.swap_alias(opensearch_client, alias, first) == []
    assert engine.alias_targets(opensearch_client, alias) == [first]
    assert engine.swap_alias(opensearch_client, alias, second) == [first]
    assert engine.alias_targets(opensearch_client, alias) == [second]
    # Swapping to the index it already names is a no-op, not a remove-then-add of itself.
    assert engine.swap_alias(opensearch_client, alias, second) == [second]
    assert engine.alias_targets(opensearch_client, alias) == [second]


def test_parse_ignores_error_bodies_and_other_aliases() -> None:
    not_found = {"error": "alias [x] missing", "status": 404}
    assert engine.parse_alias_targets(not_found, "x") == []
    mixed = {
        "i2": {"aliases": {"x": {}}},
        "i1": {"aliases": {"x": {}, "y": {}}},
        "i3": {"aliases": {"y": {}}},
    }
    assert engine.parse_alias_targets(mixed, "x") == ["i1", "i2"]
