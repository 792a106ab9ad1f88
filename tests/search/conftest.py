"""Fixtures of the search tests: an installed template and a factory for items indices with vector slots."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opensearchpy import OpenSearch
from search_support import IndexFactory

from contract.settings import Settings
from contract.types import EmbeddingType
from search.engine import create_index
from search.templates import install_items_template, vector_slot_mappings


@pytest.fixture
def items_index(opensearch_client: OpenSearch, settings: Settings) -> IndexFactory:
    """Create `{prefix}-items-<suffix>` with the template installed and both slots of each given type."""
    install_items_template(opensearch_client, settings)

    def make(suffix: str, types: Sequence[EmbeddingType]) -> str:
        name = f"{settings.index_prefix}-items-{suffix}"
        properties: dict[str, object] = {}
        for etype in types:
            properties.update(vector_slot_mappings(etype, settings))
        create_index(opensearch_client, name, properties, settings.hnsw_ef_search)
        return name

    return make
