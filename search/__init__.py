"""The only code that speaks to OpenSearch. Imports contract only.

Modules:
- `search.port`      — `SearchEngine`, the async protocol every process holds: `knn`, `exact`, `fallback`,
  `popular` (-> `list[ScoredItem]`), `get_items`, `count`, `iter_item_ids`, `index_id_digest`, `ping`,
  `cluster_problems` (a data node without k-NN); index, alias and template management (`create_index` —
  a bulk-load build with `build_meta`, shards and replicas from an `IndexLayout` —, `finish_build`,
  `force_merge`, `set_replicas`, `wait_green`, `shard_copies`, `set_index_meta`, `add_vector_slots`,
  `index_exists`, `list_indices`, `delete_index`, `refresh`, `alias_targets`, `swap_alias`,
  `put_index_template`, `index_template`); `bulk_write` (per-item checks, 429 back-off,
  `wait_for_active_shards` -> `BulkReport`), `clear_fields` (update by query), `aclose`. A response some
  shard did not answer raises `ShardsFailed` (with the partial hits).
- `search.client`    — `build_client(settings, *, timeout, pool_size)`: the one factory of a `SearchEngine`,
  over every node of `LOCKSTEP_OPENSEARCH_URL`'s host list (reads retried on another node).
- `search.opensearch` — `OpenSearchEngine`, the port on opensearch-py's `AsyncOpenSearch` (aiohttp).
- `search.results`   — `ScoredItem`, `BulkReport`, `ShardCopy` and the pure parsers of responses (hits,
  aliases, bulk items, `_shards` and `timed_out`, shard copies, nodes' plugins), `id_digest`.
- `search.filters`   — `to_query(tree)`: the neutral filter tree (contract.filters) as query DSL.
- `search.templates` — the items index template (index_templates/items.json) and per-type vector slots:
  `install_items_template(search, settings)`, `template_problems(search, settings)`, `layout_of(settings,
  mode)` (shards and replicas per index kind),
  `vector_slot_mappings(etype, settings, slots)`, `knn_vector_mapping(...)`; lucene only
  (`require_lucene` raises `UnsupportedEngine` for anything else).
- `search.requests`  — every request body, built by pure functions. `VersionedKnnQuery(location, similarity,
  vector, k, filter, exclude_ids, candidates, source_fields)` requires an `IndexedLocation`; `knn_body` and
  `exact_body` put the version term filter inside the k-NN clause / script_score query themselves.
  `FallbackQuery` (items without a vector of the version, content + popularity score), `PopularQuery`,
  `ItemDocument` + `SlotVector` with `index_action` / `update_action` / `delete_action` /
  `clear_slot_action`, `create_index_body`, `alias_swap_body`, `count_body`, `mget_body`.
- `search.scores`    — `to_similarity` / `to_score`: OpenSearch scores <-> model similarity (dot, cosine, l2).
- `search.errors`    — `SearchError` > `SearchUnavailable` (retryable) > `ShardsFailed` (a partial answer,
  `partial` holding its hits), `SearchRejected` (4xx, with reason) > `IndexNotFound` (404) and
  `QueryRejected` (400), `SearchFailed` (5xx), `VersionMismatch`, `UnsupportedEngine`, `TemplateMismatch`;
  `opensearch_errors(action)` is the one place opensearch-py exceptions become ours.
"""
