"""What the search port answers (`ScoredItem`, `BulkReport`) and the pure parsers of OpenSearch responses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from search.errors import VersionMismatch
from search.requests import BulkAction, VersionedKnnQuery
from search.scores import to_similarity


@dataclass(frozen=True)
class ScoredItem:
    """One hit: the item, its score on the model's scale (or the fallback scale), and its stored fields."""

    item_id: str
    score: float
    raw_score: float
    version: str | None
    source: Mapping[str, Any]


@dataclass(frozen=True)
class BulkReport:
    """What a bulk write did: ids written, ids that failed and why, and how many 429 retries it took."""

    succeeded: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)
    retries: int = 0

    @property
    def ok(self) -> bool:
        """Whether every action succeeded."""
        return not self.failed


def hits_of(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The hits of a search response (none when filter_path left the key out)."""
    hits: list[Mapping[str, Any]] = response.get("hits", {}).get("hits", [])
    return hits


def parse_vector_hits(response: Mapping[str, Any], query: VersionedKnnQuery) -> list[ScoredItem]:
    """Hits of a k-NN or exact query, scores converted to the model similarity; refuses any other version.

    Each hit keeps its `_source` as it came (the version field included): readers pick the fields they show.
    """
    loc = query.location
    items = []
    for hit in hits_of(response):
        source = hit.get("_source", {})
        version = source.get(loc.version_field)
        if version != loc.version:
            raise VersionMismatch(
                f"hit {hit.get('_id')!r} from {loc.index} has version {version!r} in {loc.version_field}, "
                f"the query asked for {loc.version!r}"
            )
        raw = float(hit["_score"])
        items.append(ScoredItem(str(hit["_id"]), to_similarity(query.similarity, raw), raw, version, source))
    return items


def parse_scored_hits(response: Mapping[str, Any]) -> list[ScoredItem]:
    """Hits of a fallback or popularity query (scores are on the fallback scale, no version)."""
    items = []
    for hit in hits_of(response):
        raw = float(hit["_score"])
        items.append(ScoredItem(str(hit["_id"]), raw, raw, None, hit.get("_source", {})))
    return items


def parse_alias_targets(response: Mapping[str, Any], alias: str) -> list[str]:
    """Index names whose entry in a get-alias response lists `alias`; anything else is ignored."""
    return sorted(
        name
        for name, info in response.items()
        if isinstance(info, Mapping) and isinstance(info.get("aliases"), Mapping) and alias in info["aliases"]
    )


def parse_bulk_items(
    actions: list[BulkAction], items: list[Mapping[str, Any]], retry_rejected: bool
) -> tuple[list[str], dict[str, str], list[BulkAction]]:
    """(ids written, failed id -> reason, actions to retry) of one bulk response's per-item results.

    A delete of a missing document counts as written; a 429 is retried when `retry_rejected`, else failed.
    """
    succeeded: list[str] = []
    failed: dict[str, str] = {}
    retry: list[BulkAction] = []
    for action, item in zip(actions, items, strict=True):
        result = next(iter(item.values()))
        status = int(result.get("status", 0))
        if status < 300 or (status == 404 and "delete" in item):
            succeeded.append(action.item_id)
        elif status == 429 and retry_rejected:
            retry.append(action)
        else:
            failed[action.item_id] = _item_reason(status, result.get("error"))
    return succeeded, failed, retry


def _item_reason(status: int, error: Any) -> str:
    if isinstance(error, Mapping):
        cause = error.get("caused_by")
        reason = f"{error.get('type', '')}: {error.get('reason', '')}"
        if isinstance(cause, Mapping):
            reason += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return f"{status} {reason}"
    return f"{status} {error}"


def id_digest(ids: Iterable[str]) -> str:
    """sha256 over the sorted, distinct, newline-joined ids: compare an index's ids with a catalog's."""
    digest = hashlib.sha256()
    for item_id in sorted(set(ids)):
        digest.update(item_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _failure_text(failure: Mapping[str, Any]) -> str:
    reason = failure.get("reason")
    if isinstance(reason, Mapping):
        reason = f"{reason.get('type', '')}: {reason.get('reason', '')}"
    return f"shard {failure.get('shard')} of {failure.get('index')} on node {failure.get('node')}: {reason}"


def incomplete_search(response: Mapping[str, Any]) -> str | None:
    """Why a search (or count) response lacks some shards' answers, or None when every shard answered.

    A shard with no copy left is neither `successful` nor `failed` (OpenSearch counts only copies that
    answered with an error as failed), so completeness is successful + skipped == total.
    """
    shards = response.get("_shards")
    if not isinstance(shards, Mapping):
        return None
    total, failed = int(shards.get("total", 0)), int(shards.get("failed", 0))
    answered = int(shards.get("successful", 0)) + int(shards.get("skipped", 0))
    timed_out = bool(response.get("timed_out"))
    if answered >= total and not failed and not timed_out:
        return None
    parts = [f"{answered} of {total} shards answered"]
    if timed_out:
        parts.append("the search timed out")
    parts += [_failure_text(f) for f in shards.get("failures", []) if isinstance(f, Mapping)]
    return "; ".join(parts)


def broadcast_failures(response: Mapping[str, Any]) -> str | None:
    """Why a refresh or force-merge failed on some shard copies (`_shards.failed`), or None."""
    shards = response.get("_shards")
    if not isinstance(shards, Mapping) or not int(shards.get("failed", 0)):
        return None
    listed = [_failure_text(f) for f in shards.get("failures", []) if isinstance(f, Mapping)]
    return "; ".join([f"{shards['failed']} of {shards.get('total')} shard copies failed", *listed])


def update_by_query_failures(response: Mapping[str, Any]) -> str | None:
    """Why an update-by-query did not reach every document (shard or write failures, a timeout), or None."""
    failures = [f for f in response.get("failures", []) if isinstance(f, Mapping)]
    if not failures and not response.get("timed_out"):
        return None
    parts = ["timed out"] if response.get("timed_out") else []
    for failure in failures[:3]:
        if "shard" in failure:
            parts.append(_failure_text(failure))
        else:  # a document the update could not write
            cause = failure.get("cause", {})
            parts.append(f"document {failure.get('id')}: {cause.get('type', '')}: {cause.get('reason', '')}")
    return "; ".join([f"{len(failures)} failures", *parts])


def mget_failures(response: Mapping[str, Any]) -> str | None:
    """Why an mget could not read some documents (their shard had no copy), or None."""
    failed = [doc for doc in response.get("docs", []) if doc.get("error")]
    if not failed:
        return None
    first = failed[0]
    return f"{len(failed)} documents unreadable, e.g. {first.get('_id')!r}: {_reason(first['error'])}"


def _reason(error: Any) -> str:
    if isinstance(error, Mapping):
        return f"{error.get('type', '')}: {error.get('reason', '')}"
    return str(error)


@dataclass(frozen=True)
class IndexStats:
    """What churn leaves in an index (primaries only): segments, live and deleted documents, bytes, and the
    merges running now (the merge policy's own, or one started by the indexer)."""

    segments: int
    docs: int
    deleted_docs: int
    size_bytes: int
    merging: int

    @property
    def deleted_ratio(self) -> float:
        """Deleted documents (still on disk, still walked by searches) per document stored."""
        stored = self.docs + self.deleted_docs
        return self.deleted_docs / stored if stored else 0.0


def parse_index_stats(response: Mapping[str, Any]) -> IndexStats:
    """`_stats/docs,segments,store,merge` summed over the indices it names (primaries)."""
    totals = [entry["primaries"] for entry in response.get("indices", {}).values()]
    return IndexStats(
        segments=sum(int(t.get("segments", {}).get("count", 0)) for t in totals),
        docs=sum(int(t.get("docs", {}).get("count", 0)) for t in totals),
        deleted_docs=sum(int(t.get("docs", {}).get("deleted", 0)) for t in totals),
        size_bytes=sum(int(t.get("store", {}).get("size_in_bytes", 0)) for t in totals),
        merging=sum(int(t.get("merges", {}).get("current", 0)) for t in totals),
    )


def parse_node_cpu(response: Mapping[str, Any]) -> int:
    """`_nodes/stats/os`: the CPU use (percent) of the busiest node."""
    nodes = response.get("nodes", {}).values()
    return max((int(n.get("os", {}).get("cpu", {}).get("percent", 0)) for n in nodes), default=0)


@dataclass(frozen=True)
class ShardCopy:
    """One copy of a shard (`_cat/shards`): primary or replica, its state, its node, its documents."""

    index: str
    shard: int
    primary: bool
    state: str
    node: str | None
    docs: int | None

    @property
    def serving(self) -> bool:
        """Whether the copy is whole and answers searches: started, or started and being moved to another
        node by the cluster's rebalancing (it answers until the move hands over)."""
        return self.state in SERVING_STATES


SERVING_STATES = ("STARTED", "RELOCATING")


def parse_shard_copies(rows: Iterable[Mapping[str, Any]]) -> list[ShardCopy]:
    """`_cat/shards` rows (h=index,shard,prirep,state,node,docs), by index and shard, primary first."""
    copies = [
        ShardCopy(
            index=str(row["index"]),
            shard=int(row["shard"]),
            primary=row.get("prirep") == "p",
            state=str(row.get("state")),
            # A moving copy's node reads `SOURCE -> ADDRESS ID TARGET`: on SOURCE until the move ends.
            node=str(row["node"]).split(" -> ")[0] if row.get("node") else None,
            docs=int(row["docs"]) if row.get("docs") not in (None, "") else None,
        )
        for row in rows
    ]
    return sorted(copies, key=lambda c: (c.index, c.shard, not c.primary, c.node or ""))


def unavailable_shards(copies: Iterable[ShardCopy]) -> list[str]:
    """Shards with no serving copy (nobody can answer for them), as `shard 2 of INDEX`."""
    started: dict[tuple[str, int], bool] = {}
    for copy in copies:
        key = (copy.index, copy.shard)
        started[key] = started.get(key, False) or copy.serving
    return [f"shard {shard} of {index}" for (index, shard), up in sorted(started.items()) if not up]


KNN_PLUGIN = "opensearch-knn"


def knn_plugin_problems(nodes_info: Mapping[str, Any]) -> list[str]:
    """Data nodes of a `_nodes/plugins` answer that lack the k-NN plugin, each named (empty: none)."""
    problems = []
    for node in nodes_info.get("nodes", {}).values():
        if "data" not in node.get("roles", []):
            continue
        plugins = {plugin.get("name") for plugin in node.get("plugins", [])}
        if KNN_PLUGIN not in plugins:
            problems.append(
                f"OpenSearch data node {node.get('name')} ({node.get('transport_address')}) lacks the "
                f"{KNN_PLUGIN} plugin: every data node may hold a shard of a k-NN index"
            )
    return problems
