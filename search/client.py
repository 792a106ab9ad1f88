"""`build_client`: the one way a process gets its search engine (the port, on the configured cluster)."""

from __future__ import annotations

from typing import Any

import orjson
from opensearchpy import AsyncOpenSearch, JSONSerializer

from contract.settings import StoreSettings
from search.opensearch import OpenSearchEngine
from search.port import SearchEngine


class _OrjsonSerializer(JSONSerializer):
    """orjson both ways: bulk bodies of vectors and lists of hits are most of what crosses the wire."""

    def dumps(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def loads(self, s: str) -> Any:
        return orjson.loads(s)


def _hosts(settings: StoreSettings) -> list[str]:
    """The cluster's HTTP endpoints (one today; the client balances over however many there are)."""
    return [settings.opensearch_endpoint]


def build_client(
    settings: StoreSettings, *, timeout: float | None = None, pool_size: int = 16
) -> SearchEngine:
    """The search engine of the configured cluster.

    `timeout` bounds each call (default: the settings' request timeout; bulk writes and merges pass their
    own), `pool_size` the connections kept per host. No client-side retries: callers decide what to retry.
    """
    client = AsyncOpenSearch(
        hosts=_hosts(settings),
        timeout=timeout if timeout is not None else settings.request_timeout_seconds,
        max_retries=0,
        retry_on_timeout=False,
        maxsize=pool_size,
        serializer=_OrjsonSerializer(),
    )
    return OpenSearchEngine(client)
