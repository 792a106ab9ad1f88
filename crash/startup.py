"""A run's start: the previous run's data deleted, the types and their first versions, the processes up."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping

import httpx
import redis.asyncio as aioredis

from contract import routes
from contract.wire import TypeInfo
from crash import data
from crash.context import POLL_SECONDS, READER, Crash, CrashError, auth, command
from crash.stack import KEY_PREFIX, CrashStack
from demo import processes
from demo.plan import frame_arg

HEALTH_TIMEOUT = 120.0  # a restarted orchestrator or serving process must answer /healthz by then
READY_TIMEOUT = 180.0  # every type in use after the start
REGISTER = ("types", "register", "--family", "direct-direct", "--similarity", "cosine")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def wipe(stack: CrashStack, env: Mapping[str, str]) -> None:
    """Delete the previous run's keys and indices (the crasher's own stack), logged in as `env` says."""
    client = aioredis.Redis.from_url(
        stack.redis_url,
        username=env.get("LOCKSTEP_REDIS_USERNAME"),
        password=env.get("LOCKSTEP_REDIS_PASSWORD"),
    )
    try:
        batch = [key async for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=1000)]
        for start in range(0, len(batch), 1000):
            await client.delete(*batch[start : start + 1000])
    finally:
        await client.aclose()
    async with httpx.AsyncClient(base_url=stack.opensearch_url, timeout=60.0) as search:
        listed = await search.get(
            f"/_cat/indices/{KEY_PREFIX}*", params={"format": "json", "h": "index", "expand_wildcards": "all"}
        )
        for row in listed.json() if listed.status_code == 200 else []:
            (await search.delete(f"/{row['index']}")).raise_for_status()
        templates = await search.get(f"/_index_template/{KEY_PREFIX}*")
        for entry in templates.json().get("index_templates", []) if templates.status_code == 200 else []:
            (await search.delete(f"/_index_template/{entry['name']}")).raise_for_status()


async def load_catalog(crash: Crash) -> None:
    """The first CATALOG_LIMIT goodbooks books into the catalog store, as a user would load them."""
    argv = ["catalog", "goodbooks", "--limit", str(data.CATALOG_LIMIT)]
    if await command(crash, argv, "catalog"):
        raise CrashError(f"`lockstep catalog goodbooks` failed; see {crash.layout.log_file('catalog')}")


async def register_types(crash: Crash) -> None:
    codes = await asyncio.gather(
        *(
            command(
                crash,
                [*REGISTER, "--name", name, "--dim", str(data.DIM)],
                "types",
            )
            for name in data.TYPE_MODES
        )
    )
    if any(codes):
        raise CrashError(f"`lockstep types register` failed; see {crash.layout.log_file('types')}")


async def first_version(crash: Crash, name: str) -> None:
    users, items = data.write_version(crash.layout.root / "vectors" / name, crash.rng.randrange(2**31))
    argv = ["publish", "--type", name, "--frame", frame_arg(data.frame(1)), "--users", str(users)]
    if await command(crash, [*argv, "--items", str(items)], f"publish-{name}"):
        raise CrashError(f"the first publish failed; see {crash.layout.log_file(f'publish-{name}')}")


async def start_process(crash: Crash, name: str) -> int:
    """Start a process of ours and wait until it answers its health URL; its pid."""
    spec = crash.specs[name]
    record = processes.start(crash.layout, spec, crash.env)
    if spec.health_url is not None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while not await _healthy(spec.health_url):
            if not processes.alive(record.pid) or time.monotonic() > deadline:
                raise CrashError(
                    f"{name} did not come up; log {crash.layout.log_file(name)}:\n"
                    + processes.log_tail(crash.layout, name)
                )
            await asyncio.sleep(0.2)
    return record.pid


async def wait_in_use(crash: Crash) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(
        base_url=crash.orchestrator_url, timeout=5.0, headers=auth(READER)
    ) as client:
        while time.monotonic() < deadline:
            states = [await client.get(routes.type_path(name)) for name in data.TYPE_MODES]
            if all(r.status_code == 200 and TypeInfo.model_validate_json(r.content).in_use for r in states):
                return
            await asyncio.sleep(POLL_SECONDS)
    raise CrashError(
        f"not every type got an in_use version in {READY_TIMEOUT:.0f} s; logs under {crash.layout.root}"
    )
