"""The load generator: a fixed number of concurrent clients calling POST /v1/recommend until told to stop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

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


@dataclass
class LoadStats:
    """Everything the clients saw (kept whole: a minute of requests is small)."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status_from: int, status_to: int) -> int:
        """Responses with a status in [status_from, status_to)."""
        return sum(1 for o in self.outcomes if status_from <= o.status < status_to)

    @property
    def transport_errors(self) -> int:
        """Requests that got no HTTP response."""
        return sum(1 for o in self.outcomes if o.status == 0)


def request_body(rng: random.Random, profiles: Sequence[Profile], types: Sequence[str]) -> dict[str, Any]:
    """A random /v1/recommend body: a user (or their recent items), maybe a type, maybe a filter."""
    profile = rng.choice(profiles)
    body: dict[str, Any] = {"k": 10, "explain": True}
    if rng.random() < ATTRIBUTE_SHARE:
        recent = profile.interactions[-5:]
        body["attributes"] = [{"id": f"item:{i.item_id}", "weight": i.weight} for i in recent]
    else:
        body["user_id"] = profile.user_id
    if rng.random() < TYPED_SHARE:
        body["embedding_type"] = rng.choice(list(types))
    chosen = rng.choice(FILTERS)
    if chosen is not None:
        body["filters"] = chosen
    return body


def parse_outcome(at: float, latency: float, body: dict[str, Any], response: httpx.Response) -> Outcome:
    """What the verification keeps of a response."""
    if response.status_code != 200:
        return Outcome(at, latency, response.status_code, body, error=response.text[:300])
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
    )


async def run_load(
    serving_url: str,
    profiles: Sequence[Profile],
    types: Sequence[str],
    concurrency: int,
    stop: asyncio.Event,
    stats: LoadStats,
    seed: int = 7,
) -> None:
    """`concurrency` clients send requests back to back until `stop` is set."""
    began = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=serving_url, timeout=30.0, limits=limits) as client:

        async def worker(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            while not stop.is_set():
                body = request_body(rng, profiles, types)
                sent = time.perf_counter()
                try:
                    response = await client.post("/v1/recommend", json=body)
                except httpx.HTTPError as exc:
                    now = time.perf_counter()
                    stats.outcomes.append(
                        Outcome(sent - began, now - sent, 0, body, error=f"{type(exc).__name__}: {exc}")
                    )
                    await asyncio.sleep(0.1)  # a refused connection would otherwise spin
                    continue
                now = time.perf_counter()
                stats.outcomes.append(parse_outcome(sent - began, now - sent, body, response))

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
