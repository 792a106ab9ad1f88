# The single entry point: `make help` lists the targets. CI runs `make test` (see .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Re-evaluated on each use, so a uv installed by `setup` is found by the recipes after it.
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
CRASH_SECONDS ?= 600
CRASH_HISTORY ?= crash-history.jsonl
EXAMPLE ?= goodbooks

.PHONY: help setup services services-cluster services-down down down-cluster lint browser test test-cluster bench bench-scale bench-cluster soak demo demo-cluster crash

help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on our machines) nothing caches bytecode, and every
# process we start compiled its ~1,200 imported modules from source: 3.7 s of CPU per start, 1.4 s with it.
setup: ## Install uv if missing, then exactly the locked Python dependencies into .venv.
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --compile-bytecode

services: setup ## Install (first time) and start the local OpenSearch + k-NN and Redis.
	$(UV) run lockstep services up

services-cluster: setup ## Start the cluster topology: 3 OpenSearch nodes and a Redis Cluster (3 primaries + 3 replicas).
	$(UV) run lockstep services up --topology cluster

services-down: ## Stop the local OpenSearch and Redis we started.
	@if [ -x .venv/bin/lockstep ]; then .venv/bin/lockstep services down; else echo "no .venv: nothing started"; fi

down: ## Stop the demo's orchestrator, serving API and indexers, then the local OpenSearch and Redis.
	@if [ -x .venv/bin/lockstep ]; then .venv/bin/lockstep demo down; fi
	@$(MAKE) --no-print-directory services-down

down-cluster: ## Stop the cluster demo's processes, then the cluster topology (a single-node stack stays up).
	@if [ -x .venv/bin/lockstep ]; then .venv/bin/lockstep demo down --topology cluster && \
		.venv/bin/lockstep services down --topology cluster; else echo "no .venv: nothing started"; fi

lint: setup ## ruff (lint + format check), mypy, import-linter contracts.
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

browser: ## Install Debian's chromium (browser test) when /usr/bin/chromium is missing.
	@if [ ! -x /usr/bin/chromium ]; then apt-get update && apt-get install -y chromium; fi

# The stack is stopped whatever pytest returns, and pytest's own exit code is what `make test` returns
# (5, "no tests collected", is reported as the failure it is).
test: lint browser ## Lint, start the stack, run the tests (not soak), stop the stack.
	@status=0; \
	$(MAKE) --no-print-directory services || status=$$?; \
	if [ $$status -eq 0 ]; then $(UV) run pytest -m "not soak" $(PYTEST_ARGS) || status=$$?; fi; \
	$(MAKE) --no-print-directory services-down || true; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; fi; \
	exit $$status

# The cluster tier: the same tests, the processes they start and the clients they use pointed at every node,
# indexes with 3 shards and a replica each.
CLUSTER_TIER = LOCKSTEP_TOPOLOGY=cluster LOCKSTEP_SHADOW_SHARDS=3 LOCKSTEP_SHADOW_REPLICAS=1 \
	LOCKSTEP_LIVE_SHARDS=3 LOCKSTEP_LIVE_REPLICAS=1
CLUSTER_TIER_TESTS = tests/orchestrator tests/indexer tests/serving tests/orchestrator_client

test-cluster: lint ## The core orchestrator, indexer and serving tests on the cluster topology, then stop the cluster.
	@status=0; \
	$(CLUSTER_TIER) $(UV) run pytest -m "not soak and not standalone" $(CLUSTER_TIER_TESTS) $(PYTEST_ARGS) || status=$$?; \
	$(UV) run lockstep services down --topology cluster || true; \
	exit $$status

bench: services ## Run the benchmarks (bench/), ratios against a baseline measured in the same run.
	$(UV) run python -m bench

# Not in CI: ~9 minutes at 100k × 64 (a float and an sq7 build), hours at 1M on two cores
# (LOCKSTEP_SCALE_SIZES=100000:64,1000000:64).
bench-scale: services ## The scale benchmark on the synthetic news catalog: builds, queries, memory (out/scale).
	$(UV) run python -m bench scale

# Both topologies at once: the cluster variant measures each against the other in the same run.
bench-cluster: services services-cluster ## The cluster variant: Redis Cluster and 3 OpenSearch nodes vs the single node.
	$(UV) run python -m bench cluster

soak: services ## Long-running invariant runs (pytest -m soak).
	$(UV) run pytest -m soak $(PYTEST_ARGS)

demo: services ## Bring everything up with demo data and print where to look (EXAMPLE=news: the synthetic news catalog).
	$(UV) run lockstep demo --example $(EXAMPLE)

demo-cluster: services-cluster ## The demo on the cluster topology: replicas, a node of each cluster killed mid-rollout.
	$(UV) run lockstep demo --topology cluster

crash: setup ## SIGKILL processes at random under load on a stack of its own for CRASH_SECONDS (600), then check the history.
	$(UV) run lockstep crash --seconds $(CRASH_SECONDS) --history $(CRASH_HISTORY)
