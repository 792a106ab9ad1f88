"""What runs during the chaos besides the kills: the load written to the history, the observer of each
type's state, the publishers and the rollbacks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from contract import routes
from contract.wire import InUseChange, RollbackRequest, TypeInfo
from crash import data, history
from crash.context import ADMIN, POLL_SECONDS, READER, Crash, auth, command, pause
from crash.kinds import RECOMMEND, ROLLBACK, TYPE_STATE
from demo.load import LoadStats, Outcome, error_name
from demo.plan import frame_arg
from demo.verify import scored_versions


def _request(
    crash: Crash, route: str, t: float, response: httpx.Response | None, **fields: Any
) -> dict[str, Any]:
    status = 0 if response is None else response.status_code
    extra: dict[str, Any] = {}
    if response is not None and status != 200:
        extra = {
            "error": error_name(response),
            "retry_after": "retry-after" in response.headers,
            "detail": response.text[:300] if status >= 400 else "",
        }
    return crash.history.write(
        history.REQUEST,
        t,
        route=route,
        status=status,
        **{"version": None, "item_versions": [], "degraded": False, "error": None, "retry_after": False}
        | extra
        | fields,
    )


def _outcome_event(crash: Crash, began_wall: float, outcome: Outcome) -> None:
    crash.history.write(
        history.REQUEST,
        began_wall + outcome.at,
        route=RECOMMEND,
        status=outcome.status,
        version=outcome.version,
        item_versions=scored_versions(outcome),
        degraded=outcome.degraded,
        error=outcome.error_name,
        retry_after=outcome.retry_after,
        embedding_type=outcome.embedding_type,
        detail=(outcome.error or "")[:300] if outcome.status != 200 else "",
    )


async def drain_load(crash: Crash, stats: LoadStats) -> None:
    """Write the load generator's outcomes to the history as they come."""
    written = 0
    while True:
        fresh = stats.outcomes[written:]
        written += len(fresh)
        for outcome in fresh:
            _outcome_event(crash, stats.began_wall, outcome)
        if crash.stop_all.is_set() and written == len(stats.outcomes):
            return
        await asyncio.sleep(0.2)


async def observe(crash: Crash) -> None:
    """Each type's state from the orchestrator, twice a second: a request each, and in_use changes."""
    async with httpx.AsyncClient(
        base_url=crash.orchestrator_url, timeout=5.0, headers=auth(READER)
    ) as client:
        while not crash.stop_all.is_set():
            for name in data.TYPE_MODES:
                sent = time.time()
                try:
                    response: httpx.Response | None = await client.get(routes.type_path(name))
                except httpx.HTTPError:
                    response = None
                _request(crash, TYPE_STATE, sent, response)
                if response is not None and response.status_code == 200:
                    seen = TypeInfo.model_validate_json(response.content).in_use
                    if seen != crash.in_use.get(name):
                        crash.in_use[name] = seen
                        crash.history.write(history.IN_USE_OBSERVED, type=name, version=seen)
            await asyncio.sleep(POLL_SECONDS)


async def publish(crash: Crash, name: str) -> None:
    """New versions of a type one after another, each through `lockstep publish`."""
    number = 1  # the first version is published before the run
    vectors = crash.layout.root / "vectors" / name
    while not crash.stop_chaos.is_set():
        number += 1
        frame = data.frame(number)
        users, items = data.write_version(vectors, crash.rng.randrange(2**31))
        argv = ["publish", "--type", name, "--frame", frame_arg(frame), "--users", str(users)]
        code = await command(crash, [*argv, "--items", str(items)], f"publish-{name}")
        if code == 0:
            crash.history.write(history.PUBLISH_ACKED, type=name, version=frame.version_id)
        else:
            crash.history.write(history.PUBLISH_FAILED, type=name, version=frame.version_id, code=code)
        await pause(crash.stop_chaos, crash.options.publish_pause)


async def roll_back(crash: Crash) -> None:
    """Now and then, roll a type back from the in_use version last seen."""
    async with httpx.AsyncClient(
        base_url=crash.orchestrator_url, timeout=10.0, headers=auth(ADMIN)
    ) as client:
        while not crash.stop_chaos.is_set():
            await pause(crash.stop_chaos, crash.options.rollback_every)
            if crash.stop_chaos.is_set():
                return
            name = crash.rng.choice(list(data.TYPE_MODES))
            expected = crash.in_use.get(name)
            if expected is None:
                continue
            crash.history.write(history.ROLLBACK_SENT, type=name, expected=expected)
            body = RollbackRequest(reason="crasher", expected=expected).model_dump(mode="json")
            sent = time.time()
            try:
                response: httpx.Response | None = await client.post(routes.rollback_path(name), json=body)
            except httpx.HTTPError:
                response = None
            _request(crash, ROLLBACK, sent, response)
            if response is not None and response.status_code == 200:
                change = InUseChange.model_validate_json(response.content)
                crash.history.write(
                    history.ROLLBACK_ACKED,
                    type=name,
                    from_version=change.from_version,
                    to_version=change.to_version,
                )
