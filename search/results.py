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
