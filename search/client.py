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


def connection_options(settings: StoreSettings) -> dict[str, Any]:
    """opensearch-py keyword arguments for a secured cluster: HTTP basic auth, and for https:// hosts the
    CA file that verifies them (TLS itself comes from the URL scheme). Empty for a plain local node."""
    options: dict[str, Any] = {}
    if settings.opensearch_username is not None:
        password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        options["http_auth"] = (settings.opensearch_username, password)
    if any(host.startswith("https://") for host in settings.opensearch_hosts):
        options["verify_certs"] = settings.opensearch_verify_certs
        options["ssl_show_warn"] = settings.opensearch_verify_certs
        if settings.opensearch_ca_file is not None:
            options["ca_certs"] = str(settings.opensearch_ca_file)
    return options


def build_client(
    settings: StoreSettings, *, timeout: float | None = None, pool_size: int = 16
) -> SearchEngine:
    """The search engine of the configured cluster, over every node of its host list.

    `timeout` bounds each call (default: the settings' request timeout; bulk writes and merges pass their
    own), `pool_size` the connections kept per host. A read that reaches no node, or gets 502/503/504,
    is sent to another node up to `opensearch_read_retries` times (a timeout is not retried: it spent the
    caller's budget). A write goes to another node only when its connection was refused (nothing sent).
    """

    hosts = settings.opensearch_hosts

    def client(retries: int) -> AsyncOpenSearch:
        return AsyncOpenSearch(
            hosts=hosts,
            timeout=timeout if timeout is not None else settings.request_timeout_seconds,
            max_retries=retries,
            # Not 500: the client marks a node dead for every retried status, and a live node answers 500
            # for a copy lost elsewhere; with every node marked dead it revives the first one marked, often
            # the one really down. OpenSearchEngine asks a search once more itself instead.
            retry_on_status=(502, 503, 504),
            retry_on_timeout=False,
            maxsize=pool_size,
            serializer=_OrjsonSerializer(),
            **connection_options(settings),
        )

    return OpenSearchEngine(
        reads=client(settings.opensearch_read_retries), writes=client(0), nodes=len(hosts)
    )
