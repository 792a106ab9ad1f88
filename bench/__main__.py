"""`make bench`: run every benchmark against the running stack, each against its own same-run baseline."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.checks import summary
from contract.settings import Settings
from stack.services import client_environment

# Each module exposes `run(settings) -> dict` and owns its baseline.
BENCHMARKS = ("publish", "orchestrator", "indexing", "serving", "overload", "rollout")
# Run only when named: `cluster` needs the cluster topology up besides the single node (make bench-cluster);
# `partitions` builds three layouts of a 50k-item news catalog (minutes); `scale` is make bench-scale;
# `instructions` counts serving's instructions per request under valgrind.
ON_REQUEST = ("cluster", "partitions", "scale", "instructions")
RESULTS = Path("out/bench.json")


def main(selected: list[str]) -> int:
    """Run the selected benchmarks (all by default), print and save their figures."""
    names = selected or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS) - set(ON_REQUEST))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {[*BENCHMARKS, *ON_REQUEST]}", file=sys.stderr)
        return 2
    # The benchmarks drive their own apps with the dev-* keys; they and every process they start log in
    # to the stack's Redis as `lockstep services env` says (its app user).
    os.environ.update(client_environment(Settings(development=True)))
    base = Settings(development=True)
    results: dict[str, Any] = {}
    for name in names:
        # A prefix per benchmark: nothing it writes touches the demo's or another run's data.
        token = f"bench{uuid.uuid4().hex[:8]}"
        settings = base.model_copy(update={"key_prefix": token, "index_prefix": token})
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        started = time.perf_counter()
        results[name] = module.run(settings)
        results[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(results[name], indent=2, default=str), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(f"saved {RESULTS}")
    lines, passed = summary(results)
    print("\n".join(["", "== targets ==", *lines]))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
