"""What the demo runs: which types, which indexing mode each, which processes, which frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from contract.indexing import Mode
from contract.versions import Frame
from demo.deployment import Deployment
from demo.processes import Spec

# The types `lockstep train` knows (see `lockstep train --help`). One is rolled out by shadow builds
# and one incrementally, as the design asks; the third goes by shadow too.
TYPE_MODES: Final[dict[str, Mode]] = {
    "als-d64": Mode.SHADOW,
    "ease-d128": Mode.INCREMENTAL,
    "tagauthor-d64": Mode.SHADOW,
}

# goodbooks has no timestamps; `lockstep train` maps each user's history onto 2017-01-01..2018-01-01.
EPOCH: Final = datetime(2017, 1, 1, tzinfo=UTC)
HISTORY_END: Final = datetime(2018, 1, 1, tzinfo=UTC)
FIRST_HISTORY: Final = 0.9  # the first version trains on 90% of each history; the rollout adds the rest

ORCHESTRATOR: Final = "orchestrator"
SERVING: Final = "serving"


def indexer_name(mode: Mode) -> str:
    """Pid/log stem of the indexer process of a mode."""
    return f"indexer-{mode.value}"


def replica_name(service: str, number: int, replicas: int) -> str:
    """Pid/log stem of one replica of a service: the bare name when it runs alone (the single demo)."""
    return service if replicas == 1 else f"{service}-{number}"


def process_names(deployment: Deployment | None = None, types: Mapping[str, Mode] = TYPE_MODES) -> list[str]:
    """Every background process of the demo in start order (stop in reverse); the single demo's by default."""
    orchestrators = len(deployment.orchestrator_urls) if deployment else 1
    servings = len(deployment.serving_urls) if deployment else 1
    modes = modes_of(types)
    return [
        *(replica_name(ORCHESTRATOR, n, orchestrators) for n in range(1, orchestrators + 1)),
        *(replica_name(SERVING, n, servings) for n in range(1, servings + 1)),
        *(indexer_name(m) for m in modes),
    ]


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """Host and port of a service URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@dataclass(frozen=True)
class IndexerPlan:
    """How the demo's indexers run."""

    every: str = "5s"


def service_specs(deployment: Deployment, lockstep: Sequence[str]) -> list[Spec]:
    """The orchestrators, then the serving processes, each on the port of its URL.

    Serving replica N talks to orchestrator N (modulo their count): each orchestrator serves part of the
    traffic, as behind a load balancer.
    """
    orchestrators, servings = deployment.orchestrator_urls, deployment.serving_urls
    specs: list[Spec] = []
    for number, url in enumerate(orchestrators, start=1):
        host, port = host_port(url, 8701)
        specs.append(
            Spec(
                replica_name(ORCHESTRATOR, number, len(orchestrators)),
                (*lockstep, "orchestrator", "serve", "--host", host, "--port", str(port)),
                health_url=url.rstrip("/") + "/healthz",
                env=(("LOCKSTEP_ORCHESTRATOR_URL", url),),
            )
        )
    for number, url in enumerate(servings, start=1):
        host, port = host_port(url, 8702)
        upstream = orchestrators[(number - 1) % len(orchestrators)]
        specs.append(
            Spec(
                replica_name(SERVING, number, len(servings)),
                (*lockstep, "serving", "serve", "--host", host, "--port", str(port)),
                health_url=url.rstrip("/") + "/healthz",
                env=(("LOCKSTEP_SERVING_URL", url), ("LOCKSTEP_ORCHESTRATOR_URL", upstream)),
            )
        )
    return specs


def indexer_spec(
    lockstep: Sequence[str],
    mode: Mode,
    types: Sequence[str],
    plan: IndexerPlan,
    metrics_port: int,
    orchestrator_url: str | None = None,
) -> Spec:
    """One long-running indexer of `mode` over `types`, cycling every `plan.every`, talking to
    `orchestrator_url` (default: the configured one)."""
    argv = [*lockstep, "index", "run", "--mode", mode.value, "--every", plan.every]
    for name in types:
        argv += ["--type", name]
    argv += ["--metrics-port", str(metrics_port)]
    env = (("LOCKSTEP_ORCHESTRATOR_URL", orchestrator_url),) if orchestrator_url else ()
    return Spec(indexer_name(mode), tuple(argv), port=metrics_port, env=env)


def types_of(mode: Mode, types: Mapping[str, Mode] = TYPE_MODES) -> list[str]:
    """The demo types (of `types`, name -> mode) an indexer of `mode` handles."""
    return [name for name, m in types.items() if m is mode]


def modes_of(types: Mapping[str, Mode] = TYPE_MODES) -> list[Mode]:
    """The indexing modes the demo types use, in a fixed order: one indexer process each."""
    return sorted(set(types.values()), key=lambda m: m.value)


def next_frame(latest_ends: Mapping[str, datetime | None]) -> Frame:
    """A frame ordered after every type's latest: the whole history, or (once that is published) a
    retrain on it that ends a day after the newest frame, since goodbooks holds no newer data."""
    newest = max((end for end in latest_ends.values() if end is not None), default=None)
    if newest is None or newest < HISTORY_END:
        return Frame(EPOCH, HISTORY_END)
    return Frame(EPOCH, newest + timedelta(days=1))


def frame_arg(frame: Frame) -> str:
    """The frame as `lockstep train --frame` takes it."""
    return f"{frame.start.isoformat()}..{frame.end.isoformat()}"
