"""Quality through the full stack: recall@10 / nDCG@10 via /v1/recommend, and agreement with exact top-10.

For each type and each sampled user, the served top-10 is compared with
- the user's held-out items (recall@10, nDCG@10, contract.ranking), when a holdout file is given. Seen items
  are then the stored profile less the held-out ones (sent as exclude_item_ids with exclude_seen off), as in
  training's evaluation: excluding the whole profile would exclude the very items to be found;
- the exact top-10 of the same user vector over the same version's indexed item vectors, with the same
  exclusions (script_score brute force in OpenSearch). Two shares are reported:
  `exact_top10_share_strict`: the served ids equal the exact ids, rank by rank;
  `exact_top10_share` (tie-aware): at every rank the served item's exact score equals the exact score at
  that rank (within float32 rounding, contract.ranking.tie_slack), and the served list is as long as the
  exact one. Items with identical vectors (tag/author books) are interchangeable: whichever of them the
  index returns is as right as the brute force's pick. A served item outside the exact top EXACT_DEPTH
  counts as a mismatch. Only embedding-scored items are compared; fallback items may fill slots only when
  the exact list is shorter than 10 (fewer items with a vector of the version pass the exclusions).
It also reports the share of served items that came from the fallback scorer, and `holdout_in_profile`: the
share of users whose stored profile holds a held-out item. Exclusions leave those items in play, but a user
vector aggregated from the profile (as for a user without a vector of their own) is then built from the very
items to be found, which inflates recall: load the profiles without them (`lockstep profiles load --history
SHARE --replace`).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contract.holdout import parse_holdout
from contract.profiles import Profile
from contract.ranking import hits, ndcg_at_k, recall_at_k, tie_slack
from contract.settings import ServingSettings
from contract.wire import TypeInfo
from search.port import SearchEngine
from search.requests import VersionedKnnQuery
from search.results import ScoredItem
from serving.directory import ours
from serving.state import AppState
from serving.upstream import NoUserVector, Orchestrator

K = 10
EXACT_DEPTH = 100  # exact hits fetched to look up the exact scores of served items


def read_holdout(path: Path) -> dict[str, set[str]]:
    """user_id -> held-out book ids, from a holdout file (contract.holdout)."""
    held: dict[str, set[str]] = defaultdict(set)
    for row in parse_holdout(path.read_bytes(), str(path)):
        held[row.user_id].add(row.book_id)
    return dict(held)


@dataclass
class TypeReport:
    """Accumulated figures of one type."""

    users: int = 0
    recall_sum: float = 0.0
    ndcg_sum: float = 0.0
    with_holdout: int = 0
    exact_equal: int = 0
    exact_equal_strict: int = 0
    exact_compared: int = 0
    items: int = 0
    fallback_items: int = 0
    failed: int = 0  # requests serving did not answer with 200 (counted, not scored)
    leaky: int = 0  # users whose stored profile holds a held-out item (see HOLDOUT_IN_PROFILE)

    def as_json(self) -> dict[str, Any]:
        """Means and shares."""
        return {
            "users": self.users,
            "failed_requests": self.failed,
            f"recall@{K}": round(self.recall_sum / self.with_holdout, 5) if self.with_holdout else None,
            f"ndcg@{K}": round(self.ndcg_sum / self.with_holdout, 5) if self.with_holdout else None,
            "holdout_in_profile": round(self.leaky / self.with_holdout, 5) if self.with_holdout else None,
            "exact_compared": self.exact_compared,
            "exact_top10_share": round(self.exact_equal / self.exact_compared, 5)
            if self.exact_compared
            else None,
            "exact_top10_share_strict": round(self.exact_equal_strict / self.exact_compared, 5)
            if self.exact_compared
            else None,
            "fallback_share": round(self.fallback_items / self.items, 5) if self.items else None,
        }


def equals_exact(served: list[str], exact: list[ScoredItem]) -> bool:
    """Whether the served embedding items are an exact top-k, ties interchangeable (module docstring)."""
    wanted = min(K, len(exact))
    if len(served) != wanted or len(set(served)) != len(served):
        return False
    score = {hit.item_id: hit.score for hit in exact}
    for rank, item in enumerate(served):
        if item not in score:
            return False
        reference = exact[rank].score
        if abs(score[item] - reference) > tie_slack(reference):
            return False
    return True


async def _seen(redis: Any, state_keys: Any, user: str) -> frozenset[str]:
    raw = await redis.get(state_keys.profile(user))
    if raw is None:
        return frozenset()
    return frozenset(i.item_id for i in Profile.model_validate_json(raw).interactions)


async def _one(
    serving: httpx.AsyncClient,
    orchestrator: Orchestrator,
    search: SearchEngine,
    state_keys: Any,
    redis: Any,
    info: TypeInfo,
    user: str,
    relevant: set[str] | None,
    report: TypeReport,
) -> None:
    request: dict[str, Any] = {"user_id": user, "embedding_type": info.type.name, "k": K}
    seen = await _seen(redis, state_keys, user)
    if relevant is None:
        request["exclude_seen"] = True  # serving reads the same profile
    else:
        report.leaky += int(not seen.isdisjoint(relevant))
        seen = seen - relevant
        request["exclude_seen"] = False
        request["exclude_item_ids"] = sorted(seen)
    response = await serving.post("/v1/recommend", json=request)
    if response.status_code != 200:
        report.failed += 1
        return
    body = response.json()
    served = [i["item_id"] for i in body["items"]]
    report.users += 1
    report.items += len(served)
    report.fallback_items += sum(1 for i in body["items"] if i["scorer"] != "embedding")
    if relevant is not None:
        report.with_holdout += 1
        found = hits(served, relevant, K)
        report.recall_sum += float(recall_at_k(found, len(relevant)))
        report.ndcg_sum += float(ndcg_at_k(found, len(relevant)))
    try:
        vec = await orchestrator.user_vector(info.type.name, user)
    except NoUserVector:
        return
    loc = next((loc for loc in info.indexed if loc.version == vec.version), None)
    if loc is None or vec.version != body["version"]:
        return  # in_use moved between the two calls: not comparable
    exact = await search.exact(
        VersionedKnnQuery(
            location=loc, similarity=info.type.similarity, vector=vec.vector, k=EXACT_DEPTH, exclude_ids=seen
        )
    )
    embedded = [i["item_id"] for i in body["items"] if i["scorer"] == "embedding"]
    report.exact_compared += 1
    report.exact_equal += int(equals_exact(embedded, exact))
    report.exact_equal_strict += int(embedded == [h.item_id for h in exact[:K]])


async def evaluate(
    settings: ServingSettings,
    serving_url: str,
    holdout: Path | None,
    users: int,
    types: Sequence[str] = (),
    seed: int = 7,
) -> dict[str, Any]:
    """Evaluate the servable `types` (default: every servable one) through the serving API at `serving_url`.

    Raises ValueError naming a requested type that has no in-use version.
    """
    state = AppState.build(settings.model_copy(update={"serving_orchestrator_timeout_seconds": 10.0}))
    held = read_holdout(holdout) if holdout is not None else None
    try:
        infos = [
            ours(i, settings.index_prefix)
            for i in await state.orchestrator.list_types()
            if i.in_use is not None
        ]
        if types:
            servable = {i.type.name for i in infos}
            missing = sorted(set(types) - servable)
            if missing:
                raise ValueError(
                    f"--type: {', '.join(missing)} not servable (no in-use version); "
                    f"servable: {', '.join(sorted(servable)) or 'none'}"
                )
            infos = [i for i in infos if i.type.name in types]
        if held is not None:
            candidates = sorted(held)
        else:
            prefix = state.keys.profile("")
            candidates = sorted(
                [
                    k.decode()[len(prefix) :]
                    async for k in state.redis.scan_iter(match=prefix + "*", count=1000)
                ]
            )
        sample = random.Random(seed).sample(candidates, min(users, len(candidates)))
        reports: dict[str, TypeReport] = {}
        # serving admits its own reader key (the one it presents to the orchestrator).
        reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=serving_url, timeout=30, headers=reader) as serving:
            for info in infos:
                report = reports.setdefault(info.type.name, TypeReport())
                semaphore = asyncio.Semaphore(8)

                async def run(
                    user: str,
                    info: TypeInfo = info,
                    report: TypeReport = report,
                    gate: asyncio.Semaphore = semaphore,
                ) -> None:
                    async with gate:
                        await _one(
                            serving,
                            state.orchestrator,
                            state.search,
                            state.keys,
                            state.redis,
                            info,
                            user,
                            held.get(user) if held is not None else None,
                            report,
                        )

                await asyncio.gather(*(run(u) for u in sample))
        return {"k": K, "types": {name: r.as_json() for name, r in reports.items()}}
    finally:
        await state.aclose()
