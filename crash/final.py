"""A run's end: the in_use changes the indexers logged as acknowledged, and the final state read from
Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from contract.keys import Keys
from crash import data, history
from crash.context import Crash
from crash.kinds import INDEXERS
from crash.stack import KEY_PREFIX


def indexer_acks(crash: Crash) -> None:
    """Each in_use change an indexer logged as done (after the orchestrator acknowledged it)."""
    for name in INDEXERS:
        path = crash.layout.log_file(name)
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by the kill
            if entry.get("message") == "in_use advanced":
                t = datetime.fromisoformat(entry["at"]).timestamp()
                crash.history.write(
                    history.IN_USE_ACKED,
                    t,
                    type=entry["type"],
                    by=name,
                    from_version=entry["from"],
                    to_version=entry["to"],
                )


async def final_state(
    redis_url: str, env: Mapping[str, str], keys: Keys, type_names: list[str]
) -> dict[str, Any]:
    """Each type's published versions, in_use and audit trail, read from Redis (logged in as `env` says)."""
    client = aioredis.Redis.from_url(
        redis_url,
        decode_responses=True,
        username=env.get("LOCKSTEP_REDIS_USERNAME"),
        password=env.get("LOCKSTEP_REDIS_PASSWORD"),
    )
    try:
        found: dict[str, Any] = {}
        for name in type_names:
            audit: list[tuple[str, dict[str, str]]] = await client.xrange(keys.audit(name))  # type: ignore[assignment]
            found[name] = {
                "published": await client.zrange(keys.published(name), 0, -1),
                "in_use": await client.get(keys.in_use(name)),
                "audit": [
                    {
                        "at": entry.get("at"),
                        "actor": entry.get("actor"),
                        "role": entry.get("role"),
                        "from_version": entry.get("from") or None,
                        "to_version": entry.get("to"),
                    }
                    for _, entry in audit
                ],
            }
        return found
    finally:
        await client.aclose()


async def record_final(crash: Crash) -> None:
    """The final state, read once Redis answers (it may have been killed last)."""
    deadline = time.monotonic() + crash.options.recover_timeout
    while True:
        try:
            state = await final_state(
                crash.options.stack.redis_url, crash.env, Keys(KEY_PREFIX), list(data.TYPE_MODES)
            )
            crash.history.write(history.FINAL, types=state)
            return
        except RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
