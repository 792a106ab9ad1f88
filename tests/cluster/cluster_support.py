"""The cluster tests' OpenSearch: three nodes of the stack's own code, on ports and a state dir of their own.

Only OpenSearch runs clustered here; Redis (the orchestrator's store) is the session's single one, each test
with its own key prefix. A node is SIGKILLed through its pid file and started again through the stack; the
orchestrator and serving run as `lockstep … serve` processes, as in production.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from contract.settings import DEV_READER_KEYS, Settings
from stack import opensearch_cluster, opensearch_node, ports
from stack.errors import StackError
from stack.layout import Layout, OpenSearchNode
from stack.lock import state_lock

LOCKSTEP = str(Path(sys.executable).parent / "lockstep")
# Ports of these tests alone: the session's single stack uses 9250/9350/6390, the cluster defaults 9261…,
# tests/stack's cluster 9280…/7320….
PORTS = {
    "opensearch_port": 9290,
    "opensearch_transport_port": 9390,
    "redis_port": 7330,
    "cluster_opensearch_port": 9291,
    "cluster_opensearch_transport_port": 9391,
    "cluster_redis_port": 7331,
}


def cluster_settings(base: Settings) -> Settings:
    """`base` (the session's stack: its Redis) pointed at these tests' OpenSearch cluster, all three nodes."""
    own = base.model_copy(
        update={
            **PORTS,
            "topology": "cluster",
            "state_dir": base.state_dir.parent / "lockstep-test-oscluster",
            "opensearch_node_heap": "512m",
        }
    )
    hosts = ",".join(node.url for node in Layout.of(own).cluster_opensearch)
    # Through model_validate, so the host list is checked like an environment variable would be.
    return Settings.model_validate(
        {**own.model_dump(), "opensearch_url": hosts, "redis_url": base.redis_endpoint}
    )


@dataclass(frozen=True)
class Cluster:
    """The running cluster: settings pointing at all three nodes (and the session's Redis), its layout."""

    settings: Settings
    layout: Layout

    def restore(self) -> None:
        """Start whichever node is down and wait for green with all three, ending stuck recoveries."""
        self._start_missing()
        base = self.layout.cluster_opensearch[0].url
        try:
            opensearch_cluster.wait_healthy(self.layout, timeout=90)
            return
        except StackError as exc:
            print(f"\nnot green after a restart, retrying allocation: {_stuck(base, exc)}", file=sys.stderr)
        # Seen after two of three nodes died: every node back, a replica left unassigned until something
        # asked the cluster manager to allocate again.
        httpx.post(f"{base}/_cluster/reroute", params={"retry_failed": "true"}, timeout=60)
        try:
            opensearch_cluster.wait_healthy(self.layout, timeout=60)
            return
        except StackError as exc:
            print(f"\nstill not green, restarting every node: {_stuck(base, exc)}", file=sys.stderr)
        # Seen in CI (2 cores) after node losses, each time a hang inside a node that nothing ends: a
        # replica's peer recovery that never fails on its source's side (OpenSearch #20177, open), so the
        # copy stays INITIALIZING whatever is rerouted or re-added; a shard's lock held by a close that never
        # finishes ("lock already held for [closing shard]"), so its primary cannot start again: red.
        # A restart of every node ends both; each primary comes back from its own disk.
        for node in self.layout.cluster_opensearch:
            if opensearch_node.launched_pid(node) is not None:
                kill(node)
        self._start_missing()
        try:
            opensearch_cluster.wait_healthy(self.layout, timeout=180)
        except StackError as exc:
            raise StackError(_stuck(base, exc)) from exc

    def _start_missing(self) -> None:
        for node in self.layout.cluster_opensearch:
            if opensearch_node.launched_pid(node) is None:
                _wait_free(node)
        with state_lock(self.layout):
            opensearch_cluster.launch_missing(self.settings, self.layout, Console(stderr=True))


def _stuck(base: str, exc: StackError) -> str:
    """`exc` with every shard copy not started and every active recovery (short: CI shows a part)."""
    shards = httpx.get(
        f"{base}/_cat/shards",
        params={"h": "index,shard,prirep,state,node,unassigned.reason", "format": "json"},
        timeout=60,
    ).json()
    recoveries = httpx.get(
        f"{base}/_cat/recovery",
        params={
            "active_only": "true",
            "h": "index,shard,time,stage,source_node,target_node",
            "format": "json",
        },
        timeout=60,
    ).json()
    not_started = "; ".join(
        f"{r['index']}[{r['shard']}]{r['prirep']} {r['state']} {r['node']} {r['unassigned.reason']}"
        for r in shards
        if r["state"] != "STARTED"
    )
    active = "; ".join(
        f"{r['index']}[{r['shard']}] {r['stage']} {r['time']} {r['source_node']}->{r['target_node']}"
        for r in recoveries
    )
    return f"{exc}; not started: {not_started}; recovering: {active}"


@contextmanager
def running_cluster(settings: Settings) -> Iterator[Layout]:
    """The three OpenSearch nodes, started fresh (a leftover of a killed run stopped first), stopped after."""
    layout = Layout.of(settings)
    stop(layout)
    shutil.rmtree(layout.cluster_dir, ignore_errors=True)  # a fresh cluster: no index of an earlier run
    began = time.monotonic()
    try:
        start_missing(settings, layout)
        print(f"\nOpenSearch cluster up in {time.monotonic() - began:.0f}s")
        yield layout
    finally:
        stop(layout)


def start_missing(settings: Settings, layout: Layout) -> None:
    """Start the nodes that do not run and wait until the cluster is green with all three."""
    with state_lock(layout):
        opensearch_cluster.launch_missing(settings, layout, Console(stderr=True))
        opensearch_cluster.wait_healthy(layout)


def stop(layout: Layout) -> None:
    """Stop every node of the layout that runs."""
    if layout.cluster_dir.exists():
        with state_lock(layout):
            opensearch_cluster.stop(layout)


def _wait_free(node: OpenSearchNode) -> None:
    """Wait until a killed node's ports can be listened on again (its sockets closing take a moment)."""
    deadline = time.monotonic() + 120
    for port, setting in ((node.http_port, "HTTP"), (node.transport_port, "transport")):
        while True:
            try:
                ports.ensure_free(port, node.name, setting)
                break
            except StackError:
                assert time.monotonic() < deadline, f"{node.name}'s {setting} port {port} stays taken"
                time.sleep(0.2)  # the kernel releasing a socket: nothing to wait on but the port itself


def kill(node: OpenSearchNode) -> None:
    """SIGKILL a node; returns once its process is gone."""
    pid = opensearch_node.running_pid(node) or opensearch_node.launched_pid(node)
    assert pid is not None, f"{node.name} does not run"
    os.kill(pid, signal.SIGKILL)
    while opensearch_node.launched_pid(node) is not None:
        time.sleep(0.05)  # the kernel reaps it within moments: polling the process table, not a timer


def wait_nodes(survivor: OpenSearchNode, count: int) -> None:
    """Wait until the cluster, as `survivor` sees it, has exactly `count` nodes (a lost one removed)."""
    params = {"wait_for_nodes": str(count), "timeout": "60s", "cluster_manager_timeout": "60s"}
    health = httpx.get(f"{survivor.url}/_cluster/health", params=params, timeout=90).json()
    assert health["number_of_nodes"] == count and not health["timed_out"], health


@dataclass(frozen=True, order=True)
class Copy:
    """A started shard copy: which shard, primary or not, on which node."""

    shard: int
    primary: bool
    node: str


def copies_of(layout: Layout, index: str, via: OpenSearchNode | None = None) -> list[Copy]:
    """The started copies of `index`'s shards."""
    node = via or layout.cluster_opensearch[0]
    rows = httpx.get(
        f"{node.url}/_cat/shards/{index}",
        params={"format": "json", "h": "shard,prirep,state,node"},
        timeout=30,
    ).json()
    return sorted(
        Copy(int(r["shard"]), r["prirep"] == "p", r["node"]) for r in rows if r["state"] == "STARTED"
    )


def manager_of(layout: Layout) -> str:
    """The elected cluster manager's node name."""
    node = layout.cluster_opensearch[0]
    return httpx.get(f"{node.url}/_cat/cluster_manager", params={"h": "node"}, timeout=30).text.strip()


def node_named(layout: Layout, name: str) -> OpenSearchNode:
    """The layout's node of that name."""
    return next(node for node in layout.cluster_opensearch if node.name == name)


def environment(settings: Settings) -> dict[str, str]:
    """The environment a `lockstep` process of these settings reads (the stores, prefixes, our URLs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    names = (
        "opensearch_url",
        "redis_url",
        "key_prefix",
        "index_prefix",
        "orchestrator_url",
        "serving_url",
        "orchestrator_poll_seconds",
        "serving_staleness_seconds",
        "serving_result_cache_seconds",
        "serving_orchestrator_timeout_seconds",
        "serving_opensearch_timeout_seconds",
    )
    env |= {f"LOCKSTEP_{name.upper()}": str(getattr(settings, name)) for name in names}
    # The session's Redis has our ACL users: every process logs in as the session does.
    if settings.redis_username is not None:
        env["LOCKSTEP_REDIS_USERNAME"] = settings.redis_username
    if settings.redis_password is not None:
        env["LOCKSTEP_REDIS_PASSWORD"] = settings.redis_password.get_secret_value()
    env["LOCKSTEP_DEVELOPMENT"] = "1"
    return env


@contextmanager
def serving_process(settings: Settings, component: str, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`lockstep <component> serve` on `url`'s port, up (its /healthz answers) for the block, then stopped."""
    port = url.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [LOCKSTEP, component, "serve", "--port", port],
        env=environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"{url}/healthz"):  # another process: there is no event to wait on
            assert process.poll() is None, f"{component} exited with {process.returncode}"
            assert time.monotonic() < deadline, f"{component} did not answer on {url}"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class Answer:
    """One /v1/recommend response as the load saw it."""

    status: int
    degraded: bool = False
    reason: str | None = None
    version: str | None = None
    mixed: bool = False  # an embedding item scored by another version than the response names


@dataclass
class Load:
    """Clients calling /v1/recommend over and over until stopped; every answer kept, in order."""

    url: str
    users: list[str]
    type_name: str
    concurrency: int = 8
    answers: list[Answer] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Call until `stop()`."""
        reader = {"Authorization": f"Bearer {DEV_READER_KEYS[0]}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=30, headers=reader) as client:
            await asyncio.gather(*(self._client(client, n) for n in range(self.concurrency)))

    def stop(self) -> None:
        """Let every client finish its call and end."""
        self._stop.set()

    async def until(self, condition: Callable[[list[Answer]], bool]) -> int:
        """Wait until `condition(answers)` holds; returns how many answers there are then."""
        async with self._changed:
            await self._changed.wait_for(lambda: condition(self.answers))
            return len(self.answers)

    async def _client(self, client: httpx.AsyncClient, n: int) -> None:
        i = n
        while not self._stop.is_set():
            user = self.users[i % len(self.users)]
            i += self.concurrency
            body = {"user_id": user, "embedding_type": self.type_name, "k": 10}
            response = await client.post("/v1/recommend", json=body)
            async with self._changed:
                self.answers.append(_answer(response))
                self._changed.notify_all()


def _answer(response: httpx.Response) -> Answer:
    if response.status_code != 200:
        return Answer(response.status_code, reason=response.text)
    body = response.json()
    version = body["version"]
    mixed = any(i["scorer"] == "embedding" and i["version"] != version for i in body["items"])
    return Answer(200, body["degraded"], body["degraded_reason"], version, mixed)
