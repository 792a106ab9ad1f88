"""Quality through the serving API, measured on ratings the in-use versions never saw.

The first versions train on the first FIRST_HISTORY of each user's ratings. `lockstep holdout` writes the
rest, and `lockstep eval --via-serving` sends sampled users' requests through /v1/recommend. It reports
recall@10 and nDCG@10 on those ratings, the share of users whose served top-10 is the exact top-10 of the
same version (EXACT_TARGET is the bar), and the fallback share. A type whose in-use version trained on every
rating (a re-run, after a rollout) gets the exact and fallback figures only: no rating is left that it never
saw, so a recall figure would flatter it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from contract.wire import TypeInfo
from demo.plan import EPOCH, FIRST_HISTORY, HISTORY_END

EXACT_TARGET = 0.95  # share of users whose served top-10 is the exact top-10 (the serving issue's target)


class QualityError(Exception):
    """A quality command failed; the message says which."""


@dataclass(frozen=True)
class TypeQuality:
    """One type's figures through serving; recall and nDCG are None without a holdout it never saw."""

    type_name: str
    version: str | None
    users: int
    failed_requests: int
    recall: float | None
    ndcg: float | None
    exact_top10_share: float | None
    exact_top10_share_strict: float | None
    fallback_share: float | None

    @property
    def ok(self) -> bool:
        """Every request answered, and the served top-10 is the exact one for enough users."""
        share = self.exact_top10_share
        return self.failed_requests == 0 and share is not None and share >= EXACT_TARGET


def holdout_start() -> datetime:
    """Where the first versions' frame ends (as `lockstep train --history FIRST_HISTORY` rounds it)."""
    seconds = (HISTORY_END - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=round(FIRST_HISTORY * seconds))


def never_saw_holdout(info: TypeInfo) -> bool:
    """Whether the type's in-use version trained on a frame ending by the holdout's start."""
    version = next((v for v in info.published if v.version == info.in_use), None)
    return version is not None and version.frame_end <= holdout_start()


async def _output(argv: Sequence[str], env: Mapping[str, str], what: str) -> str:
    """Run a command; its stdout (stderr passes through to the terminal)."""
    process = await asyncio.create_subprocess_exec(*argv, env=dict(env), stdout=asyncio.subprocess.PIPE)
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        raise QualityError(f"{what}: `{' '.join(argv)}` exited with {process.returncode}")
    return stdout.decode()


async def _evaluate(
    lockstep: Sequence[str],
    env: Mapping[str, str],
    serving_url: str,
    names: Sequence[str],
    users: int,
    holdout: Path | None,
) -> dict[str, Any]:
    argv = [*lockstep, "eval", "--via-serving", serving_url, "--users", str(users)]
    for name in names:
        argv += ["--type", name]
    if holdout is not None:
        argv += ["--holdout", str(holdout)]
    report: dict[str, Any] = json.loads(await _output(argv, env, "evaluating through serving"))["types"]
    return report


async def measure(
    lockstep: Sequence[str],
    env: Mapping[str, str],
    serving_url: str,
    infos: Mapping[str, TypeInfo],
    holdout: Path,
    users: int,
) -> list[TypeQuality]:
    """Figures of every type in `infos` through the serving API at `serving_url` (writes `holdout`)."""
    unseen = [name for name, info in infos.items() if never_saw_holdout(info)]
    seen_all = [name for name in infos if name not in unseen]
    figures: dict[str, Any] = {}
    if unseen:
        argv = [*lockstep, "holdout", str(holdout), "--history", str(FIRST_HISTORY)]
        await _output(argv, env, "writing the holdout")
        figures.update(await _evaluate(lockstep, env, serving_url, unseen, users, holdout))
    if seen_all:
        figures.update(await _evaluate(lockstep, env, serving_url, seen_all, users, None))
    return [
        TypeQuality(
            type_name=name,
            version=infos[name].in_use,
            users=int(figures[name]["users"]),
            failed_requests=int(figures[name]["failed_requests"]),
            recall=figures[name]["recall@10"] if name in unseen else None,
            ndcg=figures[name]["ndcg@10"] if name in unseen else None,
            exact_top10_share=figures[name]["exact_top10_share"],
            exact_top10_share_strict=figures[name]["exact_top10_share_strict"],
            fallback_share=figures[name]["fallback_share"],
        )
        for name in infos
    ]
