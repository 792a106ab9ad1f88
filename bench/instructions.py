"""Serving's CPU cost per request in instructions (valgrind's callgrind), against the floor's: a count the
shared box's noise does not move, where `bench serving`'s CPU time per request moves by ±0.1 ms between runs.

`uv run python -m bench instructions` (on request; needs valgrind, about a minute). A process under callgrind
builds serving's app (`serving.main.create_app`, caches off as in `bench serving`) and the floor
(`bench.serving_floor`) against the same orchestrator process and index, drives each app's ASGI callable
in-process (no uvicorn, no socket on the server side) with REQUESTS sequential requests, counting only
while they run. Each figure is instructions per request, both sides in the same process and run; their
ratio and difference are what serving's own code costs (bench/README.md uses them to find where).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import uvloop
from starlette.types import ASGIApp, Message

from bench.serving import (
    CLI,
    TYPE,
    USERS,
    _environment,
    _register,
    setup_world,
    stop_stack,
    wait_healthy,
    world_settings,
)
from bench.serving_floor import FloorApp
from contract.keys import Keys
from contract.settings import ServingSettings, Settings

REQUESTS, WARM_UP = 200, 50


def run(settings: Settings) -> dict[str, Any]:
    """Run the measuring process under callgrind; instructions per request of each side, and their ratio."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("bench instructions needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.%p",
            sys.executable,
            "-m",
            "bench.instructions",
        ]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "BENCH_MEASURE": "1"})
        counts = _dumps(Path(out))
    floor, serving = counts["floor"], counts["serving"]
    return {
        "benchmark": "instructions",
        "requests": REQUESTS,
        "instructions_per_request": {"floor": floor, "serving": serving},
        "serving_vs_floor": round(serving / floor, 3),
        "serving_over_floor": serving - floor,
        "checks": [],
    }


def _dumps(out: Path) -> dict[str, int]:
    """Each dump's side (its trigger names it) and its total instructions per request."""
    counts = {}
    for dump in out.glob("callgrind.*.*"):
        header = dict(
            line.split(": ", 1)
            for line in dump.read_text().splitlines()
            if line.startswith(("desc: ", "totals: "))
        )
        side = header["desc"].rsplit(" ", 1)[1]
        counts[side] = int(header["totals"].split()[0]) // REQUESTS
    return counts


async def _drive(app: ASGIApp, body: dict[str, Any], key: bytes, count: int) -> None:
    """`count` POST /v1/recommend calls of `app`, one after another; each must answer 200."""
    for n in range(count):
        status = await _post(app, orjson.dumps({**body, "user_id": f"u{n % USERS}"}), key)
        if status != 200:
            raise RuntimeError(f"the app answered {status} to request {n}")


async def _post(app: ASGIApp, raw: bytes, key: bytes) -> int | None:
    """One POST /v1/recommend of `raw` straight to the ASGI callable: the status it answered."""
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"authorization", b"Bearer " + key),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/recommend",
        "raw_path": b"/v1/recommend",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    messages: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]
    status: int | None = None

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the app works
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def measure() -> None:
    """The process under callgrind: the world, the orchestrator, both apps; a dump per side."""
    settings = world_settings(Settings(development=True))
    etype, loc = setup_world(settings, Keys(settings.key_prefix))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = _environment(settings)
        processes.append(subprocess.Popen([*CLI, "orchestrator", "serve"], env=env))
        wait_healthy(settings.orchestrator_url)
        asyncio.run(_register(settings, loc))
        os.environ.update(env)  # serving's settings, caches off, as `bench serving` starts it
        from serving.main import create_app

        serving = create_app(ServingSettings())
        floor = FloorApp(Settings(), etype, loc)
        key = settings.reader_key.get_secret_value().encode()
        sides: dict[str, tuple[ASGIApp, dict[str, Any]]] = {
            "floor": (floor, {}),
            "serving": (serving, {"embedding_type": TYPE, "k": 10, "exclude_seen": False}),
        }

        async def both() -> None:
            async with serving.router.lifespan_context(serving):
                for name, (app, body) in sides.items():
                    await _drive(app, body, key, WARM_UP)
                    _callgrind("-i", "on")
                    await _drive(app, body, key, REQUESTS)
                    _callgrind("-i", "off")
                    _callgrind("-d", name)
            await floor.orchestrator.aclose()
            await floor.search.aclose()

        uvloop.run(both())  # serving's loop under uvicorn
    finally:
        stop_stack(settings, loc, processes)


if __name__ == "__main__" and os.environ.get("BENCH_MEASURE") == "1":
    measure()
