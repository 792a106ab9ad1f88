"""The load generator: a fixed number of concurrent clients calling POST /v1/recommend until told to stop.

With several serving URLs (the cluster demo's replicas) requests go to them round-robin, as a load
balancer in front of the replicas would send them; each outcome records which one answered.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from contract.errors import ErrorName
from contract.profiles import Profile

# Business filters a shop would send; each keeps plenty of books in play (goodbooks' curated tags,
# language codes and years). None: no filter.
FILTERS: Final[tuple[dict[str, Any] | None, ...]] = (
    None,
    None,
    {"op": "range", "field": "year", "gte": 2000},
    {"op": "in", "field": "language", "values": ["eng", "en-US", "en-GB"]},
    {"op": "exists", "field": "tags"},
    # Few books in these languages have ratings, so few have vectors: the fallback scorer fills the list.
    {"op": "in", "field": "language", "values": ["spa", "fre", "ger", "ita", "por"]},
    {"op": "not", "child": {"op": "in", "field": "tags", "values": ["young-adult"]}},
    {
        "op": "and",
        "children": [
            {"op": "range", "field": "average_rating", "gte": 3.8},
            {"op": "in", "field": "tags", "values": ["fantasy", "classics", "fiction", "mystery"]},
        ],
    },
)
PARTITION_SHARE: Final = 0.3  # requests that name partitions (one or two), when the example has them
ATTRIBUTE_SHARE: Final = 0.1  # requests that send attributes (a user's recent items) instead of a user id
TYPED_SHARE: Final = 0.75  # requests that name an embedding type; the rest go by the A/B split


@dataclass(frozen=True)
class SeenItem:
    """One returned item as the verification needs it."""

    item_id: str
    scorer: str
    version: str | None
    similarity: float | None


@dataclass(frozen=True)
class Outcome:
    """One request and what came back."""

    at: float  # seconds since the load began
    latency: float  # seconds
    status: int  # HTTP status; 0 for a transport error
    body: dict[str, Any]
    embedding_type: str | None = None
    version: str | None = None
    degraded: bool = False
    items: tuple[SeenItem, ...] = ()
    error: str | None = None
    server: int = 0  # which serving URL answered (index into the list given to run_load)
    retry_after: bool = False  # a Retry-After header came with it (a 503 that says when to retry)
    error_name: str | None = None  # the `error` of a refusal in the one error shape (None: not that shape)

    @property
    def ok(self) -> bool:
        """Served in full: 200 and not degraded."""
        return self.status == 200 and not self.degraded


@dataclass
class LoadStats:
    """Everything the clients saw (kept whole: a minute of requests is small)."""

    outcomes: list[Outcome] = field(default_factory=list)
    # When the load began, on the wall clock: outcome times are seconds after it, fault and in_use
    # change times (wall clock, from other processes) are converted to the same scale.
    began_wall: float = field(default_factory=time.time)
    # Requests serving shed (503 Overloaded): retried after their Retry-After, as a client's retry policy
    # would, so they are not outcomes of their own.
    shed: int = 0

    def since_start(self, wall: float) -> float:
        """A wall-clock time as seconds after the load began (the scale of Outcome.at)."""
        return wall - self.began_wall

    def count(self, status_from: int, status_to: int) -> int:
        """Responses with a status in [status_from, status_to)."""
        return sum(1 for o in self.outcomes if status_from <= o.status < status_to)

    @property
    def transport_errors(self) -> int:
        """Requests that got no HTTP response."""
        return sum(1 for o in self.outcomes if o.status == 0)


def request_body(
    rng: random.Random,
    profiles: Sequence[Profile],
    types: Sequence[str],
    filters: Sequence[dict[str, Any] | None] = FILTERS,
    partitions: Sequence[str] = (),
) -> dict[str, Any]:
    """A random /v1/recommend body: a user (or their recent items), maybe a type, maybe a filter, maybe
    one or two of `partitions`."""
    profile = rng.choice(profiles)
    body: dict[str, Any] = {"k": 10, "explain": True}
    if rng.random() < ATTRIBUTE_SHARE:
        recent = profile.interactions[-5:]
        body["attributes"] = [{"id": f"item:{i.item_id}", "weight": i.weight} for i in recent]
    else:
        body["user_id"] = profile.user_id
    if rng.random() < TYPED_SHARE:
        body["embedding_type"] = rng.choice(list(types))
    chosen = rng.choice(list(filters))
    if chosen is not None:
        body["filters"] = chosen
    if partitions and rng.random() < PARTITION_SHARE:
        body["partitions"] = rng.sample(list(partitions), min(len(partitions), rng.choice((1, 2))))
    return body


def error_name(response: httpx.Response) -> str | None:
    """The `error` of a body in the one error shape (`{"error": name, "detail": text}`), else None."""
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and isinstance(data.get("detail"), str):
        return str(data["error"])
    return None


def parse_outcome(
    at: float, latency: float, body: dict[str, Any], response: httpx.Response, server: int = 0
) -> Outcome:
    """What the verification keeps of a response."""
    if response.status_code != 200:
        return Outcome(
            at,
            latency,
            response.status_code,
            body,
            error=response.text[:300],
            server=server,
            retry_after="retry-after" in response.headers,
            error_name=error_name(response),
        )
    data = response.json()
    items = tuple(
        SeenItem(
            str(item["item_id"]),
            str(item["scorer"]),
            item.get("version"),
            (item.get("explain") or {}).get("similarity"),
        )
        for item in data.get("items", [])
    )
    return Outcome(
        at,
        latency,
        200,
        body,
        embedding_type=data.get("embedding_type"),
        version=data.get("version"),
        degraded=bool(data.get("degraded")),
        items=items,
        server=server,
    )


async def run_load(
    serving_urls: Sequence[str],
    key: str,
    profiles: Sequence[Profile],
    types: Sequence[str],
    concurrency: int,
    stop: asyncio.Event,
    stats: LoadStats,
    seed: int = 7,
    filters: Sequence[dict[str, Any] | None] = FILTERS,
    partitions: Sequence[str] = (),
) -> None:
    """`concurrency` clients send requests back to back until `stop` is set, round-robin over the URLs."""
    began = time.perf_counter()
    stats.began_wall = time.time()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    clients = [
        httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits, headers=headers) for url in serving_urls
    ]
    turn = itertools.count()
    try:

        async def worker(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            while not stop.is_set():
                body = request_body(rng, profiles, types, filters, partitions)
                server = next(turn) % len(clients)
                sent = time.perf_counter()
                try:
                    response = await clients[server].post("/v1/recommend", json=body)
                except httpx.HTTPError as exc:
                    now = time.perf_counter()
                    error = f"{type(exc).__name__}: {exc}"
                    stats.outcomes.append(
                        Outcome(sent - began, now - sent, 0, body, error=error, server=server)
                    )
                    await asyncio.sleep(0.1)  # a refused connection would otherwise spin
                    continue
                now = time.perf_counter()
                outcome = parse_outcome(sent - began, now - sent, body, response, server)
                if outcome.status == 503 and outcome.error_name == ErrorName.OVERLOADED:
                    stats.shed += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                stats.outcomes.append(outcome)

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()
