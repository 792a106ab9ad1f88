"""What the demo runs: which types, which indexing mode each, which processes, which frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from contract.indexing import Mode
from contract.settings import Settings
from contract.versions import Frame
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


def process_names() -> list[str]:
    """Every background process of the demo, in start order (stop in reverse)."""
    modes = sorted({m for m in TYPE_MODES.values()}, key=lambda m: m.value)
    return [ORCHESTRATOR, SERVING, *(indexer_name(m) for m in modes)]


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """Host and port of a service URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@dataclass(frozen=True)
class IndexerPlan:
    """How the demo's indexers run."""

    every: str = "5s"
    limit: int | None = None  # index only the first N catalog items (tests)


def service_specs(settings: Settings, lockstep: Sequence[str]) -> list[Spec]:
    """The orchestrator and serving API, on the ports of their configured URLs."""
    o_host, o_port = host_port(settings.orchestrator_url, 8701)
    s_host, s_port = host_port(settings.serving_url, 8702)
    return [
        Spec(
            ORCHESTRATOR,
            (*lockstep, "orchestrator", "serve", "--host", o_host, "--port", str(o_port)),
            health_url=settings.orchestrator_url.rstrip("/") + "/healthz",
        ),
        Spec(
            SERVING,
            (*lockstep, "serving", "serve", "--host", s_host, "--port", str(s_port)),
            health_url=settings.serving_url.rstrip("/") + "/healthz",
        ),
    ]


def indexer_spec(
    lockstep: Sequence[str], mode: Mode, types: Sequence[str], plan: IndexerPlan, metrics_port: int
) -> Spec:
    """One long-running indexer of `mode` over `types`, cycling every `plan.every`."""
    argv = [*lockstep, "index", "run", "--mode", mode.value, "--every", plan.every]
    for name in types:
        argv += ["--type", name]
    if plan.limit is not None:
        argv += ["--limit", str(plan.limit)]
    argv += ["--metrics-port", str(metrics_port)]
    return Spec(indexer_name(mode), tuple(argv), port=metrics_port)


def types_of(mode: Mode) -> list[str]:
    """The demo types an indexer of `mode` handles."""
    return [name for name, m in TYPE_MODES.items() if m is mode]


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
