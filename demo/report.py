"""Rich renderings: recommendation tables, the live rollout panel, the summary and where to look next."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from contract.wire import TypeInfo
from demo.load import LoadStats
from demo.quality import TypeQuality
from demo.summary import Summary
from demo.verify import mixes_versions, percentile


def recommendations_table(
    user_id: str,
    history: int,
    answers: Mapping[str, dict[str, Any]],
    detail: str = "authors",
    history_of: str = "books in their profile",
) -> Table:
    """One user's top items per type: title, the `detail` field (authors), score, scorer, version."""
    table = Table(title=f"user {user_id} ({history} {history_of})", title_justify="left")
    for column in ("type", "version", "#", "title", detail, "score", "scorer"):
        table.add_column(column, no_wrap=column in ("type", "version", "#", "score", "scorer"))
    for type_name, answer in answers.items():
        if "items" not in answer:
            table.add_row(
                type_name, "-", "", Text(str(answer.get("detail", answer)), style="red"), "", "", ""
            )
            continue
        for rank, item in enumerate(answer["items"], start=1):
            table.add_row(
                type_name if rank == 1 else "",
                str(answer.get("version")) if rank == 1 else "",
                str(rank),
                str(item.get("title") or item["item_id"]),
                _text(item.get(detail))[:60],
                f"{item['score']:.4f}",
                f"{item['scorer']} {item.get('version') or ''}".strip()
                if item.get("version") != answer.get("version")
                else item["scorer"],
            )
        table.add_section()
    return table


def _text(value: Any) -> str:
    """A field's value as a table cell: lists joined, nothing as empty."""
    if value is None:
        return ""
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def states_table(states: Mapping[str, TypeInfo | None], modes: Mapping[str, str]) -> Table:
    """Per type: mode, latest, in_use, published versions."""
    table = Table("type", "indexing", "latest", "in use", "published")
    for name, info in states.items():
        table.add_row(
            name,
            modes[name],
            info.latest or "-" if info else "?",
            info.in_use or "-" if info else "?",
            str(len(info.published)) if info else "?",
        )
    return table


def live_panel(
    elapsed: float,
    duration: float,
    stats: LoadStats,
    states: Mapping[str, TypeInfo | None],
    target: str,
    advanced_at: Mapping[str, float],
    training: str,
    faults: str | None = None,
    verb: str = "training",
) -> Group:
    """What the rollout looks like right now."""
    outcomes = stats.outcomes
    served = [o for o in outcomes if o.status == 200]
    recent = [o.latency * 1000 for o in served[-500:]]
    head = Text.assemble(
        (f"rollout under load  {elapsed:5.0f}s / {duration:.0f}s+  ", "bold"),
        f"requests {len(outcomes)}  served {len(served)}  ",
        (f"5xx {stats.count(500, 600)}  ", "red" if stats.count(500, 600) else ""),
        (f"no response {stats.transport_errors}  ", "red" if stats.transport_errors else ""),
        f"shed+retried {stats.shed}  ",
        (f"mixed {sum(1 for o in served if mixes_versions(o))}  ", ""),
        f"p50 {percentile(recent, 0.5):.0f} ms  p99 {percentile(recent, 0.99):.0f} ms (last 500)",
    )
    table = Table("type", "in use", "latest", f"target {target}", "served by version")
    for name, info in states.items():
        counts: dict[str, int] = {}
        for o in served:
            if o.embedding_type == name and o.version:
                counts[o.version] = counts.get(o.version, 0) + 1
        done = advanced_at.get(name)
        table.add_row(
            name,
            (info.in_use or "-") if info else "?",
            (info.latest or "-") if info else "?",
            Text(f"in use at {done:.0f}s", style="green")
            if done is not None
            else Text("pending", style="yellow"),
            ", ".join(f"{v[-16:]}: {n}" for v, n in sorted(counts.items())),
        )
    lines = [head, Text(f"{verb}: {training}")]
    if faults is not None:
        lines.append(Text(f"faults: {faults}"))
    return Group(*lines, table)


def rollout_cost(summary: Summary) -> str:
    """p99 during the rollout and after it, and their ratio."""
    during, after = summary.p99_rollout_ms, summary.p99_settled_ms
    if during is None or after is None:
        return "-"
    return f"{during:.1f} ms / {after:.1f} ms ({during / after:.2f}x; training runs on this box too)"


def summary_table(summary: Summary) -> Group:
    """The verification summary: figures, per-type rollout, pass/fail checks."""
    figures = Table(title="rollout under load: what was verified", title_justify="left", show_header=False)
    figures.add_column("figure")
    figures.add_column("value")
    rows: Sequence[tuple[str, str]] = (
        ("load", f"{summary.seconds:.0f} s, {summary.concurrency} concurrent clients"),
        (
            "requests served",
            f"{summary.served} of {summary.requests} ({summary.served / max(1.0, summary.seconds):.0f}/s)",
        ),
        ("responses mixing versions", str(summary.mixed)),
        ("server errors (5xx, not 503 + Retry-After)", str(summary.server_errors)),
        ("503 with Retry-After", str(summary.unavailable)),
        ("requests without a response", str(summary.transport_errors)),
        ("client errors (4xx)", str(summary.client_errors)),
        ("latency p50 / p99", f"{summary.p50_ms:.1f} ms / {summary.p99_ms:.1f} ms"),
        ("p99 during the rollout / after it", rollout_cost(summary)),
        ("fallback share (items)", f"{summary.fallback_share:.1%}  scorers: {summary.scorers}"),
        ("degraded responses", f"{summary.degraded_share:.1%}"),
        (
            "similarities recomputed",
            f"{summary.similarity_items} items in {summary.similarity_responses} responses, "
            f"{len(summary.similarity_mismatches)} mismatches, "
            f"max |error| {summary.similarity_max_error:.1e}",
        ),
    )
    if summary.partition_responses is not None:
        rows = (
            *rows,
            (
                "partition-scoped answers",
                f"{summary.partition_items} items in {summary.partition_responses} responses, "
                f"{summary.partition_violations} from other partitions",
            ),
        )
    for name, value in rows:
        figures.add_row(name, value)
    types = Table()
    for column in ("type", "indexing", "in use before", "in use after", "advanced", "publish -> in use"):
        types.add_column(column, no_wrap=True)  # version ids get copied into other commands: never wrap
    types.add_column("responses before / after")
    for t in summary.types:
        types.add_row(
            t.type_name,
            t.mode,
            t.before or "-",
            t.after or "-",
            Text("yes", style="green") if t.advanced else Text("no", style="red"),
            f"{t.freshness_seconds:.1f} s" if t.freshness_seconds is not None else "-",
            f"{t.served.get(t.before or '', 0)} / {t.served.get(t.target, 0)}",
        )
    checks = Table("check", "result", "detail")
    for check in summary.checks:
        checks.add_row(
            check.name,
            Text("ok", style="green") if check.ok else Text("FAILED", style="bold red"),
            check.detail,
        )
    parts: list[Any] = [figures, types]
    if summary.cluster is not None:
        parts += cluster_tables(summary)
    parts.append(checks)
    for line in summary.similarity_mismatches[:5]:
        parts.append(Text(f"mismatch: {line}", style="red"))
    for line in summary.partition_examples[:5]:
        parts.append(Text(f"outside its partitions: {line}", style="red"))
    return Group(*parts)


def quality_table(quality: Sequence[TypeQuality]) -> Table:
    """Per type: recall and nDCG on held-out ratings, agreement with the exact top-10, fallback share."""
    table = Table(title="quality through POST /v1/recommend", title_justify="left")
    for column in ("type", "in use", "users", "recall@10", "nDCG@10", "= exact top-10", "strict", "fallback"):
        table.add_column(column, no_wrap=True)

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    for q in quality:
        table.add_row(
            q.type_name,
            q.version or "-",
            f"{q.users}" + (f" ({q.failed_requests} failed)" if q.failed_requests else ""),
            "-" if q.recall is None else f"{q.recall:.3f}",
            "-" if q.ndcg is None else f"{q.ndcg:.3f}",
            Text(share(q.exact_top10_share), style="green" if q.ok else "red"),
            share(q.exact_top10_share_strict),
            share(q.fallback_share),
        )
    if any(q.recall is None for q in quality):
        table.caption = "recall -: the in-use version trained on every rating, none is left to hold out"
    return table


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def cluster_tables(summary: Summary) -> list[Table]:
    """The cluster demo's faults (kill -> promotion -> recovery -> back) and in-use staleness per replica."""
    cluster = summary.cluster
    assert cluster is not None
    faults = Table(title="faults (SIGKILL mid-rollout)", title_justify="left")
    for column in (
        "node",
        "promoted after",
        "first full answer",
        "recovered after",
        "back after",
    ):
        faults.add_column(column, no_wrap=True)
    faults.add_column("during the window")
    recovered = {r.node: r for r in cluster.recoveries}
    for fault in cluster.faults:
        r = recovered.get(fault.node)
        faults.add_row(
            f"{fault.service} {fault.node}",
            _secs(fault.promotion_seconds),
            _secs(r.first_ok_seconds if r else None),
            _secs(r.recovered_seconds if r else None),
            _secs(fault.rejoin_seconds),
            f"{r.requests} requests: {r.degraded} degraded, {r.unavailable} 503+Retry-After, {r.errors} other"
            if r
            else "-",
        )
    # Long texts under the table, not in a column a narrow terminal would squeeze to nothing.
    notes = [f"{f.node}: {f.reason}; at promotion: {f.promotion}" for f in cluster.faults]
    if cluster.fault_error:
        notes.append(f"fault injection: {cluster.fault_error}")
    faults.caption = "\n".join(notes)
    faults.caption_justify = "left"
    stale = Table(
        title=f"in-use staleness per serving replica (bound {cluster.staleness_bound:.1f} s)",
        title_justify="left",
    )
    for column in (
        "replica",
        "type",
        "old version answered until",
        "such answers",
        "first new-version answer",
        "new-version answers",
    ):
        stale.add_column(column, no_wrap=True)
    stale.caption = (
        "seconds after the in_use audit entry's time, which the orchestrator takes just before the change: "
        "a request sent a moment earlier may be answered by the new version"
    )
    stale.caption_justify = "left"
    for row in cluster.staleness:
        stale.add_row(
            row.server,
            row.type_name,
            f"{row.stale_seconds:.2f} s after",
            str(row.old_after_change),
            "-" if row.first_new_seconds is None else f"{row.first_new_seconds:.2f} s after",
            str(row.new_answers),
        )
    replicas = Table(
        "serving replica", "requests", title="load balancer stand-in: round-robin", title_justify="left"
    )
    for url, count in summary.per_server.items():
        replicas.add_row(url, str(count))
    return [replicas, faults, stale]
