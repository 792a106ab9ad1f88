"""Our search exceptions, and the one place that maps opensearch-py exceptions to them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import opensearchpy

if TYPE_CHECKING:  # search.results imports this module
    from search.results import ScoredItem

# Statuses that mean "try again later" rather than "your request is wrong".
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})


class SearchError(Exception):
    """Base of every error the search library raises."""


class SearchUnavailable(SearchError):  # noqa: N818 - names the issue asks for
    """OpenSearch could not be reached, timed out, or asked us to back off (retryable)."""


class ShardsFailed(SearchUnavailable):
    """Some shards of an index answered for no copy (or timed out): the answer is incomplete.

    `partial` holds the hits the shards that answered gave (a search's; empty for other calls): a caller
    may serve them as an incomplete answer, labelled so; any other caller gets a SearchUnavailable.
    """

    def __init__(self, message: str, partial: Sequence[ScoredItem] = ()) -> None:
        super().__init__(message)
        self.partial = tuple(partial)


class SearchRejected(SearchError):  # noqa: N818 - names the issue asks for
    """OpenSearch refused the request (4xx); `reason` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"OpenSearch rejected the request ({status}): {reason}")
        self.status = status
        self.reason = reason


class IndexNotFound(SearchRejected):
    """The index or alias does not exist."""


class QueryRejected(SearchRejected):
    """OpenSearch refused the query itself (400), e.g. a filter value its field type cannot hold.

    The filter validation (contract.filters) should refuse such input first; callers answer this as the
    client's error rather than a server error, in case a filter gets past it.
    """


class SearchFailed(SearchError):  # noqa: N818 - names the issue asks for
    """OpenSearch failed on its side (5xx other than unavailability)."""


class VersionMismatch(SearchError):  # noqa: N818 - names the issue asks for
    """A hit carried another version than the query's: the lockstep invariant would be broken."""


class UnsupportedEngine(SearchError, ValueError):  # noqa: N818 - names the issue asks for
    """A k-NN engine other than lucene was asked for."""


class TemplateMismatch(SearchError):  # noqa: N818 - names the issue asks for
    """The index template on the server (or in index_templates/) disagrees with the contract."""


def _reason_of(info: Any, fallback: str) -> str:
    """The most specific reason an OpenSearch error body gives."""
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            causes = error.get("root_cause") or []
            cause = causes[0] if causes and isinstance(causes[0], dict) else error
            kind, text = cause.get("type", ""), cause.get("reason", "")
            if kind or text:
                return f"{kind}: {text}" if kind else str(text)
        elif error:
            return str(error)
    return fallback


@contextmanager
def opensearch_errors(action: str) -> Iterator[None]:
    """Run OpenSearch calls (awaited ones too), turning client exceptions into ours; `action` names them."""
    try:
        yield
    except (opensearchpy.ConnectionTimeout, opensearchpy.ConnectionError) as exc:
        raise SearchUnavailable(
            f"{action}: OpenSearch unreachable or timed out ({exc.__class__.__name__})"
        ) from exc
    except opensearchpy.TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        reason = _reason_of(exc.info, str(exc.error))
        if status in _UNAVAILABLE_STATUSES:
            raise SearchUnavailable(f"{action}: OpenSearch unavailable ({status}): {reason}") from exc
        if status == 404:
            raise IndexNotFound(status, f"{action}: {reason}") from exc
        if status == 400:
            raise QueryRejected(status, f"{action}: {reason}") from exc
        if 400 <= status < 500:
            raise SearchRejected(status, f"{action}: {reason}") from exc
        raise SearchFailed(f"{action}: OpenSearch failed ({status}): {reason}") from exc
