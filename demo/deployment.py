"""Where the demo's processes run and what they connect to: one of each on the single node, or replicas on
the cluster topology.

On the cluster topology the demo runs `replicas` orchestrators and `replicas` serving processes, each on a
port of its own; the load generator spreads requests over the serving processes round-robin, standing in
for the load balancer a deployment puts in front of N stateless replicas. Every process connects to all
three OpenSearch nodes and to the Redis Cluster, and indexes are replicated (a node's loss keeps a copy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.settings import Settings, Topology

# The cluster demo's first orchestrator and serving ports (the others follow): apart from the single demo's
# 8701/8702, since both demos may run at once like both stacks do.
CLUSTER_ORCHESTRATOR_PORT = 8711
CLUSTER_SERVING_PORT = 8721
CLUSTER_REPLICAS = 2
# Index layout on the three nodes: a replica of every shard, so a killed node's primaries are promoted
# from the copies on the others.
CLUSTER_SHARDS = 3
CLUSTER_INDEX_REPLICAS = 1


@dataclass(frozen=True)
class Deployment:
    """The demo's topology, its service URLs and the settings every process it starts gets."""

    topology: Topology
    orchestrator_urls: tuple[str, ...]
    serving_urls: tuple[str, ...]
    # LOCKSTEP_* variables set for every command and process the demo runs (on top of the environment).
    env: Mapping[str, str] = field(default_factory=dict)
    # The same, as Settings fields (what the demo itself reads with).
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def clustered(self) -> bool:
        """The cluster topology (replicas, faults) rather than the single node."""
        return self.topology == "cluster"

    def settings(self, base: Settings) -> Settings:
        """`base` with the deployment's stores and the first orchestrator's and serving process's URLs."""
        return base.model_copy(
            update={
                **self.fields,
                "topology": self.topology,
                "orchestrator_url": self.orchestrator_urls[0],
                "serving_url": self.serving_urls[0],
            }
        )


def single(settings: Settings) -> Deployment:
    """One orchestrator and one serving process on their configured URLs, the stack as configured."""
    return Deployment("single", (settings.orchestrator_url,), (settings.serving_url,))


def cluster(
    settings: Settings,
    explicit: Mapping[str, str],
    replicas: int = CLUSTER_REPLICAS,
    orchestrator_port: int = CLUSTER_ORCHESTRATOR_PORT,
    serving_port: int = CLUSTER_SERVING_PORT,
) -> Deployment:
    """`replicas` orchestrators and serving processes on the cluster topology's stores.

    `explicit` is the environment: a LOCKSTEP_* variable set there for an index or write knob (shards,
    replicas, WAIT) wins over the demo's choice; the stores are always the cluster topology's.
    """
    # The stores are always the cluster topology's own (a LOCKSTEP_*_URL of the single node must not leak in).
    stores: dict[str, Any] = settings.cluster_stores()
    knobs: dict[str, Any] = {
        # An in_use change counts only once a replica has it: a primary killed right after still has
        # it on the replica that takes over.
        "redis_wait_replicas": 1,
        "shadow_shards": CLUSTER_SHARDS,
        "shadow_replicas": CLUSTER_INDEX_REPLICAS,
        "live_shards": CLUSTER_SHARDS,
        "live_replicas": CLUSTER_INDEX_REPLICAS,
        # The demo kills a node on purpose: live writes proceed on the promoted primaries instead of
        # waiting (a minute, OpenSearch's delayed allocation) for the lost replicas to be rebuilt.
        "live_wait_for_active_shards": "1",
    }
    fields = {**stores, **{name: value for name, value in knobs.items() if _variable(name) not in explicit}}
    env = {_variable(name): _text(value) for name, value in fields.items()}
    env["LOCKSTEP_TOPOLOGY"] = "cluster"
    return Deployment(
        "cluster",
        tuple(f"http://127.0.0.1:{orchestrator_port + i}" for i in range(replicas)),
        tuple(f"http://127.0.0.1:{serving_port + i}" for i in range(replicas)),
        env=env,
        fields=fields,
    )


def _variable(name: str) -> str:
    return f"LOCKSTEP_{name.upper()}"


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)
