"""What the crasher kills, which routes it calls, and what counts as a kind's first success after a kill."""

from __future__ import annotations

from typing import Final

from contract.errors import ErrorName

ORCHESTRATOR: Final = "orchestrator"
SERVING: Final = "serving"
INDEXER_SHADOW: Final = "indexer-shadow"
INDEXER_INCREMENTAL: Final = "indexer-incremental"
REDIS: Final = "redis"
OPENSEARCH: Final = "opensearch"
PROCESSES: Final = (ORCHESTRATOR, SERVING, INDEXER_SHADOW, INDEXER_INCREMENTAL, REDIS, OPENSEARCH)
INDEXERS: Final = (INDEXER_SHADOW, INDEXER_INCREMENTAL)

# The routes the crasher calls, and the service that answers each.
RECOMMEND: Final = "recommend"  # serving: POST /v1/recommend (the load)
TYPE_STATE: Final = "orchestrator.type"  # orchestrator: GET a type (in_use read from Redis on each call)
ROLLBACK: Final = "orchestrator.rollback"  # orchestrator: POST a rollback (admin)
SERVICE_OF: Final[dict[str, str]] = {RECOMMEND: SERVING, TYPE_STATE: ORCHESTRATOR, ROLLBACK: ORCHESTRATOR}

# The 5xx a service documents (contract.errors): 503 with Retry-After, in the one error shape, while a
# dependency is down or the process sheds load. Any other 5xx is a violation.
DOCUMENTED_503: Final[dict[str, frozenset[ErrorName]]] = {
    SERVING: frozenset({ErrorName.UNAVAILABLE, ErrorName.OVERLOADED}),
    ORCHESTRATOR: frozenset({ErrorName.REDIS_UNAVAILABLE, ErrorName.OVERLOADED}),
}


# What each kind's success (below) needs besides itself. Two kinds are down together only when neither
# needs the other, so a recovery time is the killed process's own; Redis and OpenSearch also never go down
# together, since `lockstep services up` restarts one under the stack's lock while the other waits.
NEEDS: Final[dict[str, frozenset[str]]] = {
    SERVING: frozenset(),
    ORCHESTRATOR: frozenset({REDIS}),
    REDIS: frozenset({ORCHESTRATOR, OPENSEARCH}),
    OPENSEARCH: frozenset({SERVING, ORCHESTRATOR, REDIS}),
    INDEXER_SHADOW: frozenset({ORCHESTRATOR, REDIS, OPENSEARCH}),
    INDEXER_INCREMENTAL: frozenset({ORCHESTRATOR, REDIS, OPENSEARCH}),
}


def compatible(kind: str, down: set[str]) -> bool:
    """Whether `kind` may be killed while the kinds in `down` have not recovered yet."""
    return not any(other in NEEDS[kind] or kind in NEEDS[other] for other in down)


def success_of(process: str, event: dict[str, object]) -> bool:
    """Whether `event` (a request, or an indexer's cycle) shows `process` working again after its kill.

    serving: any answer of /v1/recommend; orchestrator and Redis: a type's state (its in_use is read from
    Redis on every call); OpenSearch: a full recommendation (not degraded: the k-NN query answered); an
    indexer: a cycle completed by its new process.
    """
    if process in INDEXERS:
        return event.get("kind") == "indexer_cycle" and event.get("process") == process
    if event.get("kind") != "request" or event.get("status") != 200:
        return False
    route = event.get("route")
    if process == SERVING:
        return route == RECOMMEND
    if process in (ORCHESTRATOR, REDIS):
        return route == TYPE_STATE
    if process == OPENSEARCH:
        return route == RECOMMEND and event.get("degraded") is False
    raise ValueError(f"unknown process kind {process!r}")
