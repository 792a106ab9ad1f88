"""Every copy of a shadow-built index: replicas added after the load, waited for, each checked whole.

A build loads and merges primaries only; replicas then copy the merged segments (cheaper than indexing every
document once per copy). The index is promoted only when every copy of every shard has started and holds
as many documents as its primary, and the primaries hold the whole catalog: a node lost mid-build leaves a
missing copy, which fails the cycle (a later one builds again), never a promotion.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.errors import ClusterError, VerificationError
from search.port import SearchEngine
from search.results import ShardCopy
from search.templates import IndexLayout


async def replicate(search: SearchEngine, index: str, layout: IndexLayout, timeout_seconds: float) -> None:
    """Give the index its replicas and wait until every copy has started; ClusterError past the timeout."""
    if layout.replicas:
        await search.set_replicas(index, layout.replicas)
    if not await search.wait_green(index, timeout_seconds):
        copies = await search.shard_copies(index)
        raise ClusterError(
            f"{index}: not every shard copy started within {timeout_seconds:g} s ({describe(copies)}); "
            "not promoting: a later cycle builds it again"
        )
    # Replicas recovered from the primaries' files; a refresh of every copy makes what they hold searchable.
    await search.refresh(index)


def check_copies(index: str, copies: Sequence[ShardCopy], layout: IndexLayout, expected: int) -> None:
    """Every shard has 1 + replicas started copies on distinct nodes, each as full as its primary.

    A copy the cluster is moving to another node counts on its source: it is whole and answers until the
    move hands over, and rebalancing may start at any moment (another index created, a node back)."""
    total = 0
    for shard in range(layout.shards):
        of_shard = [c for c in copies if c.shard == shard]
        started = [c for c in of_shard if c.serving]
        nodes = {c.node for c in started}
        if len(started) != layout.replicas + 1 or len(nodes) != len(started):
            raise VerificationError(
                f"{index}: shard {shard} has {len(started)} started copies on {len(nodes)} nodes, wants "
                f"{layout.replicas + 1} ({describe(of_shard)}); not promoting"
            )
        primary = next((c for c in started if c.primary), None)
        if primary is None or primary.docs is None:
            raise VerificationError(f"{index}: shard {shard} has no started primary; not promoting")
        short = [c for c in started if c.docs != primary.docs]
        if short:
            raise VerificationError(
                f"{index}: shard {shard}: a copy on {short[0].node} holds {short[0].docs} documents, its "
                f"primary {primary.docs}; not promoting"
            )
        total += primary.docs
    if total != expected:
        raise VerificationError(f"{index}: the primaries hold {total} documents, the catalog {expected}")


def describe(copies: Sequence[ShardCopy]) -> str:
    """One line per copy state: `shard 0 primary STARTED on opensearch-1, shard 0 replica UNASSIGNED`."""
    return ", ".join(
        f"shard {c.shard} {'primary' if c.primary else 'replica'} {c.state}"
        + (f" on {c.node}" if c.node else "")
        for c in copies
    )
