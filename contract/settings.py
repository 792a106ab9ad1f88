"""Settings, environment variables prefixed `LOCKSTEP_`, split per concern.

Each process takes the class of what it reads (`OrchestratorSettings`, `IndexerSettings`,
`ServingSettings`, `StackSettings`); `Settings` holds them all for the CLI, the demo, benchmarks and tests.
The variable names are the same whichever class reads them, so one table in the README documents them.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HEAP = re.compile(r"^[1-9][0-9]*[mg]$")
_NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")
_HTTP_HOST = re.compile(r"^https?://[^\s/,]+(:[0-9]{1,5})?/?$")
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_state_dir() -> Path:
    # OpenSearch runs as a dedicated system user when we are root, and that user cannot
    # traverse /root, so root's runtime state lives under /var/lib.
    if os.geteuid() == 0:
        return Path("/var/lib/lockstep")
    return Path.home() / ".local" / "share" / "lockstep"


# Shipped so that `make demo` and `make test` work out of the box; refused unless LOCKSTEP_DEVELOPMENT is set.
DEV_READER_KEYS = ("dev-reader-1", "dev-reader-2")
DEV_INDEXER_KEYS = ("dev-indexer-1", "dev-indexer-2")
DEV_ADMIN_KEYS = ("dev-admin-1", "dev-admin-2")
DEV_CATALOG_KEYS = ("dev-catalog-1", "dev-catalog-2")
DEV_KEYS = frozenset((*DEV_READER_KEYS, *DEV_INDEXER_KEYS, *DEV_ADMIN_KEYS, *DEV_CATALOG_KEYS))

# The local stack `lockstep services up` runs: one OpenSearch node and one Redis, or a 3-node OpenSearch
# cluster and a Redis Cluster of 3 primaries + 3 replicas.
Topology = Literal["single", "cluster"]
OPENSEARCH_CLUSTER_NODES = 3
REDIS_CLUSTER_NODES = 6
# Redis Cluster nodes talk to each other on their port + 10000.
REDIS_CLUSTER_BUS_OFFSET = 10000
# Our servers bind 127.0.0.1 only, so a Redis on any other host is not one of ours.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


class _FromEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOCKSTEP_", extra="ignore", frozen=True)


class StoreSettings(_FromEnv):
    """Where the stores are and which names in them are ours (every process)."""

    opensearch_url: str | None = Field(
        None,
        description="An existing OpenSearch cluster to use, one URL or several comma-separated (its nodes: "
        "reads go to another when one fails); when set, `services up` starts none.",
    )
    redis_url: str | None = Field(
        None,
        description="An existing Redis to use (redis://host:port/db, or rediss:// for TLS); when set, "
        "`services up` starts none.",
    )
    redis_username: str | None = Field(
        None,
        description="ACL user to log in to Redis as, with redis_password (`lockstep services env` prints "
        "those of our own Redis); empty: none (or only redis_password, for a `requirepass` server).",
    )
    redis_password: SecretStr | None = Field(None, description="Password of redis_username.")
    redis_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) that verify a TLS Redis: a rediss:// redis_url (the cluster "
        "topology's nodes then all speak TLS); empty: the system's CAs.",
    )
    opensearch_username: str | None = Field(
        None, description="User for HTTP basic auth to OpenSearch (a cluster with the security plugin)."
    )
    opensearch_password: SecretStr | None = Field(None, description="Password of opensearch_username.")
    opensearch_ca_file: Path | None = Field(
        None, description="CA certificate(s) (PEM) that verify an https:// OpenSearch; empty: the system's."
    )
    opensearch_verify_certs: bool = Field(
        True, description="Verify an https:// OpenSearch's certificate and host name (off: tests only)."
    )
    opensearch_port: int = Field(9250, ge=1024, le=65535, description="HTTP port of the local OpenSearch.")
    redis_port: int = Field(6390, ge=1024, le=65535, description="Port of the local Redis.")
    index_prefix: str = Field("lockstep", description="Prefix of every OpenSearch index and alias we own.")
    key_prefix: str = Field("lockstep", description="Prefix of every Redis key we own.")
    request_timeout_seconds: float = Field(2.0, gt=0, le=60, description="Timeout per dependency call.")
    opensearch_read_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Times an idempotent read (search, mget, count, get) that could not reach a node, or got "
        "502/503/504, is retried on another node of the host list; writes are never retried this way.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    redis_topology: Literal["standalone", "cluster", "sentinel"] = Field(
        "standalone",
        description="How Redis runs: one server (redis_url), a Redis Cluster (redis_url or "
        "redis_cluster_nodes as seeds), or a primary found through Sentinel (redis_sentinel_*).",
    )
    redis_cluster_nodes: list[str] = Field(
        default_factory=list,
        description="host:port seeds of a Redis Cluster (JSON list); empty: redis_url's host and port.",
    )
    redis_sentinel_hosts: list[str] = Field(
        default_factory=list, description="host:port of the Sentinels (JSON list; topology sentinel)."
    )
    redis_sentinel_master: str = Field(
        "lockstep", description="The primary's name the Sentinels monitor (topology sentinel)."
    )
    redis_replica_reads: bool = Field(
        False,
        description="Read immutable data (vectors, manifests) from replicas, the primary on a miss; "
        "in_use, indexed and locks are always read from the primary (cluster or sentinel only).",
    )
    redis_wait_replicas: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Replicas that must acknowledge a manifest commit or an in_use change (WAIT) before it "
        "counts as done; empty: 0 with standalone, 1 with cluster or sentinel.",
    )
    redis_wait_timeout_ms: int = Field(
        1000, ge=1, le=60_000, description="How long a write waits for those acknowledgements (WAIT timeout)."
    )

    @field_validator("index_prefix", "key_prefix")
    @classmethod
    def _safe_prefix(cls, value: str) -> str:
        if not _NAME_PREFIX.fullmatch(value):
            raise ValueError(f"prefix {value!r} must match {_NAME_PREFIX.pattern} (lowercase, no ':' or '*')")
        return value

    @field_validator("redis_ca_file", "opensearch_ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("redis_cluster_nodes", "redis_sentinel_hosts")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not _HOST_PORT.fullmatch(entry):
                raise ValueError(f"{entry!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _topology(self) -> StoreSettings:
        if self.redis_topology == "sentinel" and not self.redis_sentinel_hosts:
            raise ValueError("redis_sentinel_hosts: redis_topology sentinel needs at least one Sentinel")
        if self.redis_replica_reads and self.redis_topology == "standalone":
            raise ValueError(
                "redis_replica_reads: a standalone Redis has no replicas the client knows of; "
                "set redis_topology to cluster or sentinel"
            )
        return self

    @property
    def redis_replicas_to_wait(self) -> int:
        """How many replicas must acknowledge a commit (redis_wait_replicas, or the topology's default)."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 0 if self.redis_topology == "standalone" else 1

    @field_validator("opensearch_url")
    @classmethod
    def _host_list(cls, value: str | None) -> str | None:
        if value is None:
            return None
        hosts = [host.strip() for host in value.split(",")]
        bad = [host for host in hosts if not _HTTP_HOST.fullmatch(host)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not http(s)://host[:port]; give one URL or several, comma-separated"
            )
        return ",".join(hosts)

    @property
    def opensearch_hosts(self) -> list[str]:
        """The OpenSearch nodes in effect: the configured cluster's host list, or the local node."""
        if self.opensearch_url is None:
            return [f"http://127.0.0.1:{self.opensearch_port}"]
        return self.opensearch_url.split(",")

    @property
    def opensearch_endpoint(self) -> str:
        """The first OpenSearch node in effect (tools that talk to one node: probes, benchmarks)."""
        return self.opensearch_hosts[0]

    @property
    def redis_endpoint(self) -> str:
        """The Redis URL in effect: the configured server, or the local one."""
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_tls(self) -> bool:
        """Whether Redis is reached over TLS (a rediss:// URL)."""
        return self.redis_endpoint.startswith("rediss://")


class DataSettings(_FromEnv):
    """Where the example data lives (training, the indexer's catalog, the demo)."""

    data_dir: Path = Field(
        _REPO_ROOT.parent / "shared" / "data" / "goodbooks",
        description="goodbooks CSVs (books, tags, book_tags, ratings); default: shared/ beside the clone.",
    )
    catalog_schema: Path = Field(
        _REPO_ROOT / "examples" / "goodbooks" / "schema.yaml",
        description="The item schema (YAML, contract.items.ItemSchema) every process of a deployment reads.",
    )


class StackSettings(StoreSettings, DataSettings):
    """Installing and starting the local OpenSearch and Redis (`lockstep services`)."""

    topology: Topology = Field(
        "single",
        description="What `services up` runs: `single` (one OpenSearch node, one Redis) or `cluster` "
        "(3 OpenSearch nodes, a Redis Cluster of 3 primaries + 3 replicas).",
    )
    opensearch_transport_port: int = Field(
        9350, ge=1024, le=65535, description="Transport port of the local OpenSearch."
    )
    opensearch_heap: str = Field("1g", description="Heap of the local OpenSearch (-Xms/-Xmx), e.g. 1g, 512m.")
    cluster_opensearch_port: int = Field(
        9261,
        ge=1024,
        le=65535 - OPENSEARCH_CLUSTER_NODES + 1,
        description="HTTP port of the cluster's first OpenSearch node; the others take the next ones.",
    )
    cluster_opensearch_transport_port: int = Field(
        9361,
        ge=1024,
        le=65535 - OPENSEARCH_CLUSTER_NODES + 1,
        description="Transport port of the cluster's first OpenSearch node; the others take the next ones.",
    )
    cluster_redis_port: int = Field(
        7301,
        ge=1024,
        le=65535 - REDIS_CLUSTER_BUS_OFFSET - REDIS_CLUSTER_NODES + 1,
        description="Port of the cluster's first of 6 Redis nodes; the others take the next ones, and each "
        "also listens on its port + 10000 (cluster bus).",
    )
    opensearch_node_heap: str = Field(
        "512m", description="Heap of each OpenSearch node of the cluster (-Xms/-Xmx)."
    )
    opensearch_user: str = Field(
        "lockstep-opensearch", description="System user that runs OpenSearch when we are root."
    )
    redis_system_user: str = Field(
        "lockstep-redis", description="System user that runs Redis when we are root."
    )
    maven_repository: str = Field(
        "https://repo1.maven.org/maven2", description="Maven repository the OpenSearch zips come from."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "lockstep", description="Downloads cache (kept across clones)."
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Install, data, log and pid directories of the local stack.",
    )

    @field_validator("opensearch_heap", "opensearch_node_heap")
    @classmethod
    def _heap_format(cls, value: str) -> str:
        if not _HEAP.fullmatch(value):
            raise ValueError(f"heap {value!r} must look like 512m or 2g")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackSettings:
        # Both topologies may run at once from one state dir, so no port of one may be the other's.
        used: dict[int, str] = {}
        for name, port in self._ports():
            if port in used:
                raise ValueError(f"{name} uses port {port}, which {used[port]} already uses")
            used[port] = name
        return self

    def cluster_stores(self) -> dict[str, str | list[str]]:
        """Store settings that point a process at every node of the local cluster topology."""
        first_os, first_redis = self.cluster_opensearch_port, self.cluster_redis_port
        return {
            "opensearch_url": ",".join(
                f"http://127.0.0.1:{first_os + i}" for i in range(OPENSEARCH_CLUSTER_NODES)
            ),
            "redis_topology": "cluster",
            "redis_url": f"redis://127.0.0.1:{first_redis}",
            "redis_cluster_nodes": [f"127.0.0.1:{first_redis + i}" for i in range(REDIS_CLUSTER_NODES)],
        }

    @property
    def redis_is_ours(self) -> bool:
        """Whether the Redis in effect is one `services` starts from state_dir (no redis_url, or it and every
        cluster seed at 127.0.0.1 on redis_port or a cluster_redis_port node): logged in to with our users."""
        if self.redis_url is None:
            return True
        # The cluster demo and `services env` point processes at our own nodes through redis_url (see
        # cluster_stores); only a server elsewhere is the user's, whose login they configure. Every seed
        # must be ours: our passwords never go to a server we did not start. Ours speak no TLS.
        url = urlsplit(self.redis_url)
        seeds = [(url.hostname, url.port or 6379)]  # redis-py's default port
        seeds += [
            (host, int(port)) for host, port in (node.rsplit(":", 1) for node in self.redis_cluster_nodes)
        ]
        ports = {self.redis_port, *(self.cluster_redis_port + i for i in range(REDIS_CLUSTER_NODES))}
        return url.scheme == "redis" and all(host in _LOCAL_HOSTS and port in ports for host, port in seeds)

    def _ports(self) -> list[tuple[str, int]]:
        """Every port either topology of the local stack listens on, each with the setting it comes from."""
        single = [
            ("opensearch_port", self.opensearch_port),
            ("opensearch_transport_port", self.opensearch_transport_port),
            ("redis_port", self.redis_port),
        ]
        opensearch = [
            (f"{name} (+{i})", base + i)
            for name, base in (
                ("cluster_opensearch_port", self.cluster_opensearch_port),
                ("cluster_opensearch_transport_port", self.cluster_opensearch_transport_port),
            )
            for i in range(OPENSEARCH_CLUSTER_NODES)
        ]
        redis = [
            (f"cluster_redis_port (+{i}{bus})", self.cluster_redis_port + i + offset)
            for bus, offset in (("", 0), (", bus", REDIS_CLUSTER_BUS_OFFSET))
            for i in range(REDIS_CLUSTER_NODES)
        ]
        return single + opensearch + redis


class QuerySettings(_FromEnv):
    """How wide serving's k-NN queries search: serving, and the recall gate that measures what it serves."""

    # Measured (serving eval on goodbooks, 1000 users, exclude-seen): tag/author books share vectors, and
    # with large groups of identical vectors ef_search 256 finds the exact top-10 for 0.95 of users, 448 and
    # up for all of them (also als/ease: 1.0), at the same query latency on 10k items (2-4 ms).
    serving_ef_search: int = Field(
        512,
        ge=8,
        le=10000,
        description="HNSW beam width of serving's k-NN queries, and of the indexer's recall gate, for a type "
        "that names none of its own.",
    )


class KnnSettings(_FromEnv):
    """How item indices are built (the indexer, and what serving's queries assume)."""

    knn_engine: str = Field("lucene", description="k-NN engine; only lucene works with the Maven k-NN build.")
    # Measured (bench.indexing sweep/shadow; random unit vectors, 128-d, the hard case; ef_search 256):
    # recall@10 of random queries m=16: 0.98 at 20k, 0.65 at 100k; m=32: 0.99 and 0.90, for ~1.3x bulk
    # and ~2x force-merge time at a query p50 of 2-5 ms. At 100k the shadow recall gate (item queries,
    # floor 0.95) fails with m=16 (0.84) and passes with m=32 (0.98).
    hnsw_m: int = Field(32, ge=2, le=100, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(256, ge=8, le=4096, description="HNSW build-time beam width.")
    hnsw_ef_search: int = Field(
        256,
        ge=8,
        le=10000,
        description="HNSW query-time beam width an index keeps (knn.algo_param.ef_search), for queries that "
        "name none; serving's and the recall gate's name theirs (serving_ef_search).",
    )

    @field_validator("knn_engine")
    @classmethod
    def _lucene_only(cls, value: str) -> str:
        if value != "lucene":
            raise ValueError(
                f"knn_engine={value!r} is refused: the Maven k-NN build ships no native faiss/nmslib "
                "libraries, and the first write to such an index kills the OpenSearch node. Use 'lucene'."
            )
        return value


class IndexSettings(_FromEnv):
    """How item indices are laid out on the cluster and written (the indexer)."""

    # Replicas default to 0 so one node stays green; a cluster sets them (1 = a copy survives a node loss).
    shadow_shards: int = Field(1, ge=1, le=1024, description="Primary shards of each shadow-built index.")
    shadow_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="Replicas of each shadow-built index, added after the bulk load and merge; the build "
        "waits for every copy (green) before it verifies and promotes.",
    )
    live_shards: int = Field(1, ge=1, le=1024, description="Primary shards of the live (incremental) index.")
    live_replicas: int = Field(0, ge=0, le=16, description="Replicas of the live (incremental) index.")
    live_wait_for_active_shards: str = Field(
        "all",
        description="Copies of each shard that must be active before a live-index write proceeds "
        "(`all`, or a number from 1 to live_replicas + 1).",
    )
    live_max_deleted_ratio: float = Field(
        0.1,
        gt=0,
        le=1,
        description="When deleted documents (item updates and deletions leave them) pass this share of the "
        "live index, the incremental indexer expunges them at the end of its cycle (a merge of the segments "
        "holding them): searches stop walking them.",
    )
    live_max_changes: int = Field(
        10_000,
        ge=1,
        le=100_000,
        description="Catalog changes one incremental cycle applies at most (its mini-batch); more wait for "
        "the next cycles. A metadata-only change writes no vector again.",
    )
    live_max_segments: int = Field(
        10,
        ge=1,
        le=1000,
        description="When the live index holds more segments than this per primary shard, the incremental "
        "indexer merges them down to it at the end of its cycle: a search walks one HNSW graph per segment, "
        "so latency follows the segment count. Past this and live_max_deleted_ratio both, the segment merge "
        "and the expunge take turns.",
    )
    live_expunge_interval_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="At most one merge of the live index (a segment merge or an expunge) per this many "
        "seconds: a merge rebuilds HNSW graphs, which costs CPU that serving shares; deletions only become "
        "mergeable once OpenSearch's retention lease has moved past them (~30 s).",
    )
    index_green_timeout_seconds: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="How long a shadow build waits for every copy of its index to start (green); past it "
        "the cycle fails and a later one builds again.",
    )

    @model_validator(mode="after")
    def _active_shards(self) -> IndexSettings:
        value = self.live_wait_for_active_shards
        if value == "all":
            return self
        copies = self.live_replicas + 1
        if not value.isdigit() or not 1 <= int(value) <= copies:
            raise ValueError(
                f"live_wait_for_active_shards={value!r} must be 'all' or a number from 1 to {copies} "
                f"(live_replicas + 1)"
            )
        return self


class HttpServerSettings(_FromEnv):
    """What both web services bound per connection: the time a client has to send a request."""

    request_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Time a client has to send a whole request (headers and body) once it connects or "
        "starts one; past it the connection is closed (slow or idle clients hold no connection forever).",
    )


class OrchestratorLink(_FromEnv):
    """Where a client process finds the orchestrator."""

    orchestrator_url: str = Field("http://127.0.0.1:8701", description="Where the orchestrator listens.")


class ApiKeySettings(_FromEnv):
    """The API keys a service accepts, by role (the orchestrator and serving read the same variables)."""

    development: bool = Field(
        False,
        description="Accept the shipped dev-* API keys (the demo and tests set it; never in production).",
    )
    reader_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(k) for k in DEV_READER_KEYS],
        description="API keys of the reader role (serving's key to the orchestrator; callers of "
        "serving's recommend/similar/types); JSON list.",
    )
    indexer_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(k) for k in DEV_INDEXER_KEYS],
        description="API keys of the indexer role; JSON list.",
    )
    admin_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(k) for k in DEV_ADMIN_KEYS],
        description="API keys of the admin role (also serving's user data: user list, history); JSON list.",
    )
    catalog_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(k) for k in DEV_CATALOG_KEYS],
        description="API keys of the catalog role (the orchestrator's item writes: PUT/PATCH/DELETE "
        "/v1/items, POST /v1/items:batch); JSON list.",
    )

    @model_validator(mode="after")
    def _long_keys(self) -> ApiKeySettings:
        for role in ("reader_keys", "indexer_keys", "admin_keys", "catalog_keys"):
            keys = [k.get_secret_value() for k in getattr(self, role)]
            if any(len(k) < 8 for k in keys):
                raise ValueError(f"{role}: every API key must be at least 8 characters")
        return self


class OrchestratorSettings(StoreSettings, OrchestratorLink, ApiKeySettings, HttpServerSettings):
    """The orchestrator process: its poll, its cache, and the API keys it accepts."""

    orchestrator_poll_seconds: float = Field(
        2.0, gt=0, le=3600, description="How often the orchestrator polls Redis for new versions."
    )
    orchestrator_cache_entries: int = Field(
        100_000, ge=0, le=10_000_000, description="Vectors the orchestrator caches in process (0 disables)."
    )
    orchestrator_max_in_flight: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Requests an orchestrator process works on at once; beyond that 503 Overloaded + "
        "Retry-After at once (its requests are short Redis reads: every serving process's calls meet here).",
    )


class IndexerSettings(
    StoreSettings, KnnSettings, QuerySettings, IndexSettings, DataSettings, OrchestratorLink
):
    """The indexer process: shadow builds, incremental batches, promotion."""

    indexer_key: SecretStr = Field(
        SecretStr(DEV_INDEXER_KEYS[0]), description="Key the indexer presents to the orchestrator."
    )
    slot_grace_seconds: float = Field(
        30.0, ge=0, description="Keep a previous version answerable this long after in_use moves."
    )
    recall_floor: float = Field(
        0.95,
        ge=0,
        le=1,
        description="A shadow build is promoted only if its recall@10 vs exact reaches this.",
    )
    shadow_keep: int = Field(
        2, ge=1, le=50, description="Shadow indices kept per type (newest first) for rollback, after grace."
    )
    indexer_lock_seconds: float = Field(
        30.0, gt=0, le=3600, description="Expiry of the per-target indexer lock (renewed while a cycle runs)."
    )
    indexer_bulk_workers: int = Field(
        3, ge=1, le=16, description="Bulk requests the indexer keeps in flight at once (1: sequential)."
    )
    indexer_max_docs_per_second: float = Field(
        0,
        ge=0,
        description="Documents the indexer writes per second at most, in both modes (0: no cap). OpenSearch "
        "indexes as fast as it is fed; on nodes that also serve queries, a cap keeps a rollout from taking "
        "serving's CPU (make bench: rollout).",
    )
    indexer_cpu_budget_percent: float = Field(
        0,
        ge=0,
        le=100,
        description="CPU use of the busiest OpenSearch node (node stats) above which the indexer halves its "
        "write rate, measured every indexer_throttle_interval_seconds; within it the rate climbs back by a "
        "quarter per interval, up to the cap (0: no budget).",
    )
    indexer_throttle_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the indexer compares the nodes' CPU use with its budget.",
    )


class ServingSettings(StoreSettings, QuerySettings, OrchestratorLink, ApiKeySettings, HttpServerSettings):
    """The serving process: keys it accepts, dependency budgets, caches, A/B split and query width."""

    serving_url: str = Field("http://127.0.0.1:8702", description="Where the serving API listens.")
    reader_key: SecretStr = Field(
        SecretStr(DEV_READER_KEYS[0]), description="Key the serving process presents to the orchestrator."
    )
    ab_weights: dict[str, float] = Field(
        default_factory=dict,
        description="A/B split of requests without embedding_type: type name -> weight (JSON object); "
        "empty: equal weights over the types that have an in-use version.",
    )
    serving_orchestrator_timeout_seconds: float = Field(
        0.5, gt=0, le=60, description="Serving's timeout per orchestrator call (then it degrades)."
    )
    serving_opensearch_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="Serving's timeout per OpenSearch call (then it degrades)."
    )
    serving_max_in_flight: int = Field(
        32,
        ge=1,
        le=10_000,
        description="Requests a serving process works on at once; beyond that 503 Overloaded + Retry-After "
        "at once instead of queueing (health and metrics routes are not counted). The default only stops "
        "unbounded queues; for latency under overload set about the cores the process gets (`make bench`'s "
        "overload: 2 on 2 cores).",
    )
    serving_direct_dispatch: bool = Field(
        True,
        description="POST /v1/recommend goes straight to its endpoint, skipping FastAPI's inner layers "
        "(service.direct; same answers, less CPU). Off only to measure what it saves (`make bench`).",
    )
    serving_deadline_seconds: float = Field(
        2.5,
        gt=0,
        le=60,
        description="Serving's budget per request: each dependency call gets what is left of it (at most its "
        "own timeout), so a request never waits on its dependencies past it.",
    )
    serving_staleness_seconds: float = Field(
        1.0, gt=0, le=60, description="Longest serving keeps a type's in-use version / index routing cached."
    )
    serving_user_cache_seconds: float = Field(
        30.0, ge=0, le=3600, description="TTL of serving's user-vector cache, keyed by (type, version, user)."
    )
    serving_result_cache_seconds: float = Field(
        5.0, ge=0, le=3600, description="TTL of serving's result cache (also bounds how long item edits lag)."
    )

    @field_validator("ab_weights")
    @classmethod
    def _ab_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"ab_weights[{name!r}]={weight!r} must be finite and >= 0")
        if value and not any(value.values()):
            raise ValueError("ab_weights: at least one weight must be > 0")
        return value


# The ignore: the pydantic mypy plugin gives IndexerSettings and ServingSettings model_construct signatures
# it judges incompatible once both take QuerySettings' field; the classes themselves combine fine.
class Settings(StackSettings, OrchestratorSettings, IndexerSettings, ServingSettings):  # type: ignore[misc]
    """Every setting: for the CLI, the demo, benchmarks and tests, which drive several processes."""
