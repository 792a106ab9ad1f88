"""The only code that speaks to OpenSearch. Imports contract only.

Modules:
- `search.filters`   — `to_query(tree)`: the neutral filter tree (contract.filters) as query DSL.
- `search.templates` — the items index template (index_templates/items.json) and per-type vector slots:
  `install_items_template(client, settings)`, `template_problems(client, settings)`,
  `vector_slot_mappings(etype, settings, slots)`, `knn_vector_mapping(...)`; lucene only
  (`require_lucene` raises `UnsupportedEngine` for anything else).
- `search.requests`  — every request body, built by pure functions. `VersionedKnnQuery(location, similarity,
  vector, k, filter, exclude_ids, candidates, source_fields)` requires an `IndexedLocation`; `knn_body` and
  `exact_body` put the version term filter inside the k-NN clause / script_score query themselves.
  `FallbackQuery` (items without a vector of the version, content + popularity score), `PopularQuery`,
  `ItemDocument` + `SlotVector` with `index_action` / `update_action` / `delete_action`, `create_index_body`,
  `alias_swap_body`, `count_body`, `mget_body`.
- `search.engine`    — thin I/O: `build_client(settings)`, `knn_search`, `exact_search`, `fallback_search`,
  `popular_search` (-> `list[ScoredItem]`), `bulk_write` (per-item checks, 429 back-off -> `BulkReport`),
  `create_index`, `add_vector_slots`, `swap_alias`, `alias_targets`, `refresh`, `count`, `get_items`,
  `index_id_digest`, `delete_index`.
- `search.item_indices` — indexer extras (bulk-load index creation, force-merge, `_meta` build markers).
- `search.async_engine` — `AsyncSearch`: the same bodies and hit parsing over `search.keepalive`, for serving.
- `search.keepalive` — `KeepAlivePool`: the keep-alive HTTP/1.1 client of serving's request path (OpenSearch
  here, and serving's orchestrator client), `HttpUnavailable` for every transport failure.
- `search.scores`    — `to_similarity` / `to_score`: OpenSearch scores <-> model similarity (dot, cosine, l2).
- `search.errors`    — `SearchError` > `SearchUnavailable` (retryable), `SearchRejected` (4xx, with reason)
  > `IndexNotFound`, `SearchFailed` (5xx), `VersionMismatch`, `UnsupportedEngine`, `TemplateMismatch`;
  `opensearch_errors(action)` is the one place opensearch-py exceptions become ours.
"""
