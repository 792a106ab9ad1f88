"""Redis down or slow: 503 with Retry-After (never 500), readiness vs liveness, recovery at once."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from orchestrator_support import AppFactory, Fixtures, auth, direct_type, frame, rows

from contract import routes
from contract.keys import Keys, Kind
from contract.settings import Settings
from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE

# A Redis of the test's own is a standalone one, whichever topology the session runs on.
# A Redis of the test's own: standalone, and without the stack Redis's ACL users.
STANDALONE: dict[str, object] = {
    "redis_topology": "standalone",
    "redis_cluster_nodes": [],
    "redis_username": None,
    "redis_password": None,
}

pytestmark = pytest.mark.anyio

RECOVERY_REQUESTS = 3
STALL_MS = 120_000  # far longer than the app's request timeout, and than the test waits for an answer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayRedis:
    """A private redis-server on its own port, for stopping and restarting under a running app."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> redis.Redis:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                # Set up as the orchestrator's startup check requires (contract.redis_setup).
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--hash-max-listpack-entries",
                str(LISTPACK_ENTRIES),
                "--hash-max-listpack-value",
                str(LISTPACK_VALUE),
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A redis-server only this test uses; stopped (by its own pid) afterwards."""
    server = ThrowawayRedis(_free_port(), tmp_path)
    yield server
    server.stop()


def _seed(client: redis.Redis, keys: Keys) -> None:
    fixtures = Fixtures(client, keys)
    etype = direct_type()
    fixtures.register(etype)
    version = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 3, 8, 1)})
    fixtures.set_in_use(etype, version)


async def test_redis_down_gives_503_and_recovers_with_the_next_requests(
    app_client: AppFactory, settings: Settings, throwaway: ThrowawayRedis
) -> None:
    own = settings.model_copy(
        update={
            **STANDALONE,
            "redis_url": f"redis://127.0.0.1:{throwaway.port}/0",
            "request_timeout_seconds": 0.5,
            "orchestrator_poll_seconds": 0.1,
        }
    )
    keys = Keys(own.key_prefix)
    _seed(throwaway.start(), keys)
    reader = auth(own, "reader")
    url = routes.user_vector_path("als-d8", "u1")
    async with app_client(own) as client:
        assert (await client.get(url, headers=reader)).status_code == 200
        assert (await client.get("/readyz")).status_code == 200

        throwaway.stop()
        down = await client.get(url, headers=reader)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "1"
        assert down.json()["error"] == "RedisUnavailable"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "Retry-After" in ready.headers
        assert (await client.get("/healthz")).status_code == 200  # the process itself is fine
        types = await client.get(routes.type_path("als-d8"), headers=reader)
        assert types.status_code == 503  # never a 500, whichever route

        restarted = throwaway.start()
        _seed(restarted, keys)
        # No cool-down to wait out: a request re-dials the dead connection it draws (one quick retry).
        statuses = [(await client.get(url, headers=reader)).status_code for _ in range(RECOVERY_REQUESTS)]
        assert statuses[-1] == 200, f"not back {RECOVERY_REQUESTS} requests after Redis was: {statuses}"
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text
        errors = next(
            line
            for line in metrics.splitlines()
            if line.startswith("lockstep_orchestrator_redis_errors_total")
        )
        assert float(errors.split()[-1]) >= 2


async def test_slow_redis_gives_503_within_the_timeout(
    app_client: AppFactory, settings: Settings, throwaway: ThrowawayRedis
) -> None:
    own = settings.model_copy(
        update={
            **STANDALONE,
            "redis_url": f"redis://127.0.0.1:{throwaway.port}/0",
            "request_timeout_seconds": 0.3,
        }
    )
    direct = throwaway.start()
    _seed(direct, Keys(own.key_prefix))
    async with app_client(own) as client:
        url = routes.user_vector_path("als-d8", "u2")
        assert (await client.get(url, headers=auth(own, "reader"))).status_code == 200
        # Redis answers nobody from here on (the test ends before the pause does, stopping the server).
        # CLIENT PAUSE is in force once it replies, so the request below cannot slip in before the stall.
        direct.execute_command("CLIENT", "PAUSE", str(STALL_MS), "ALL")
        slow = await asyncio.wait_for(
            client.get(routes.user_vector_path("als-d8", "u0"), headers=auth(own, "reader")),
            timeout=STALL_MS / 2000,
        )
        # An answer while Redis still stalls is the app's own timeout (plus one quick retry).
        assert slow.status_code == 503 and slow.headers["Retry-After"] == "1"


async def test_closed_port_is_503_from_the_first_request(app_client: AppFactory, settings: Settings) -> None:
    own = settings.model_copy(
        update={
            **STANDALONE,
            "redis_url": f"redis://127.0.0.1:{_free_port()}/0",
            "request_timeout_seconds": 0.3,
        }
    )
    async with app_client(own) as client:
        response = await client.get(routes.user_vector_path("als-d8", "u1"), headers=auth(own, "reader"))
        assert response.status_code == 503 and response.json()["error"] == "RedisUnavailable"
        assert (await client.get("/healthz")).status_code == 200


async def test_types_listed_before_the_first_poll_are_read_not_an_empty_list(
    app_client: AppFactory, settings: Settings, throwaway: ThrowawayRedis
) -> None:
    # Started while Redis is down, the first poll fails and the next is an hour away: the snapshot is empty.
    own = settings.model_copy(
        update={
            **STANDALONE,
            "redis_url": f"redis://127.0.0.1:{throwaway.port}/0",
            "request_timeout_seconds": 0.5,
            "orchestrator_poll_seconds": 3600,
        }
    )
    reader = auth(own, "reader")
    async with app_client(own) as client:
        down = await client.get(routes.types_path(), headers=reader)
        # Before: 200 with [] (serving then answered 409 "no embedding type has an in-use version").
        assert down.status_code == 503 and down.json()["error"] == "RedisUnavailable", down.text
        _seed(throwaway.start(), Keys(own.key_prefix))
        listed = await client.get(routes.types_path(), headers=reader)
        assert listed.status_code == 200, listed.text
        assert [(t["type"]["name"], t["in_use"]) for t in listed.json()] == [("als-d8", frame(1).version_id)]
