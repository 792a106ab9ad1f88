"""Our Redis as `services up` starts it: ACL users with passwords, no dangerous commands, not root.

Each test starts a redis-server of its own the way the stack does (stack.redis_server.start), on a free
port and in a directory of its own, and stops it by its pid afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console

from contract.keys import Keys
from contract.redis_setup import checked_client
from contract.settings import Settings
from serving.main import create_app as create_serving
from stack import processes, redis_acl, redis_cluster, redis_server
from stack.layout import Layout, RedisNode
from stack.redis_acl import RedisUser, RedisUsers

DANGEROUS = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "dir", "/root"),
    ("CONFIG", "REWRITE"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", "default", "on", "nopass", "+@all"),
    ("MODULE", "LIST"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("SAVE",),
]


@dataclass(frozen=True)
class OwnRedis:
    """A redis-server started like the stack's, with its users."""

    node: RedisNode
    users: RedisUsers
    pid: int
    state_dir: Path

    def client(self, user: RedisUser | None, password: str | None = None) -> redis.Redis:
        """A client logged in as `user` (its own password unless `password`), or not logged in."""
        login: dict[str, str] = {}
        if user is not None:
            login = {"username": user.value, "password": password or self.users.passwords[user]}
        # No retries: a refused login is the answer, not an outage to wait out.
        return redis.Redis(port=self.node.port, socket_timeout=5, retry=Retry(NoBackoff(), 0), **login)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A secured redis-server on a free port; its directory must be reachable by the Redis system user,
    so it is not under pytest's private tmp dir."""
    state_dir = Path(tempfile.mkdtemp(prefix="lockstep-redis-acl-"))
    state_dir.chmod(0o755)
    node = RedisNode("redis", _free_port(), state_dir / "redis")
    users = redis_acl.ensure(state_dir)
    pid = redis_server.start(node, Console(stderr=True), users, Settings().redis_system_user)
    try:
        yield OwnRedis(node, users, pid, state_dir)
    finally:
        redis_server.stop(node)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_a_client_without_the_password_is_refused(own_redis: OwnRedis) -> None:
    with pytest.raises(redis.AuthenticationError):  # NOAUTH: `default` has a password nobody has
        own_redis.client(None).ping()
    with pytest.raises(redis.AuthenticationError):
        own_redis.client(RedisUser.APP, password="not-the-password").ping()
    with pytest.raises(redis.AuthenticationError):
        own_redis.client(None).execute_command("AUTH", "default", "")
    assert own_redis.client(RedisUser.APP).ping()


def test_transactions_and_scripts_survive_a_kill_and_restart(own_redis: OwnRedis) -> None:
    client = own_redis.client(RedisUser.APP)
    with client.pipeline(transaction=True) as multi:
        multi.set("tx:a", "1").set("tx:b", "2").execute()
    client.eval("redis.call('SET', KEYS[1], ARGV[1])", 1, "script:c", "3")
    client.set("plain:d", "4")
    os.kill(own_redis.pid, signal.SIGKILL)  # what the AOF holds is all that comes back
    while processes.alive(own_redis.pid):
        time.sleep(0.01)  # polls a condition: the process is gone
    redis_server.start(own_redis.node, Console(stderr=True), own_redis.users, Settings().redis_system_user)
    # Redis 7.0 replays the AOF as `default`; switched off, it dropped every transaction and script effect.
    assert client.mget("tx:a", "tx:b", "script:c", "plain:d") == [b"1", b"2", b"3", b"4"]


def test_a_start_waits_past_its_timeout_while_redis_loads_its_dataset(own_redis: OwnRedis) -> None:
    """A big AOF takes Redis longer to replay than the start's PING timeout; it answers LOADING meanwhile."""
    client = own_redis.client(RedisUser.APP)
    keys = 20_000
    with client.pipeline(transaction=False) as pipe:
        for n in range(keys):
            pipe.set(f"load:{n}", n)
        pipe.execute()
    redis_server.stop(own_redis.node)
    # key-load-delay (a setting Redis keeps for its own tests) makes the replay slow: 100 us a key, 2 s.
    slow = ("key-load-delay 100",)
    system_user = Settings().redis_system_user
    redis_server.start(own_redis.node, Console(stderr=True), own_redis.users, system_user, slow, timeout=0.5)
    assert client.dbsize() == keys
    log = own_redis.node.log.read_text()
    (loaded,) = re.findall(r"DB loaded from append only file: ([0-9.]+) seconds", log)
    assert float(loaded) > 0.5  # the start outwaited its timeout


@pytest.mark.parametrize("user", [RedisUser.ADMIN, RedisUser.APP, RedisUser.SERVING, RedisUser.REPLICA])
def test_no_user_may_flush_reconfigure_debug_or_shut_down(own_redis: OwnRedis, user: RedisUser) -> None:
    client = own_redis.client(user)
    for command in DANGEROUS:
        # NOPERM from the ACL; DEBUG is also switched off for everyone (Redis 7's enable-debug-command).
        with pytest.raises(redis.ResponseError, match=r"no permissions|DEBUG command not allowed"):
            client.execute_command(*command)
    assert own_redis.client(RedisUser.APP).ping()  # still up: SHUTDOWN was refused


def test_serving_reads_but_cannot_write(own_redis: OwnRedis) -> None:
    own_redis.client(RedisUser.APP).set("lockstep:probe", b"1")
    serving = own_redis.client(RedisUser.SERVING)
    assert serving.get("lockstep:probe") == b"1"
    for write in (("SET", "lockstep:probe", "2"), ("DEL", "lockstep:probe"), ("EVAL", "return 1", "0")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            serving.execute_command(*write)


@pytest.mark.parametrize("user", [RedisUser.APP, RedisUser.SERVING])
def test_the_startup_check_passes_with_each_process_user(own_redis: OwnRedis, user: RedisUser) -> None:
    settings = Settings(
        redis_url=own_redis.node.url,
        redis_username=user.value,
        redis_password=own_redis.users.passwords[user],
    )
    client = checked_client(settings)  # INFO and CONFIG GET of the settings every process relies on
    assert client.ping()
    client.close()
    # And without the password, the check fails as an outage would, not as a wrong setup.
    with pytest.raises(redis.AuthenticationError):
        checked_client(settings.model_copy(update={"redis_password": None}))


def test_redis_does_not_run_as_root_and_keeps_its_secrets_private(own_redis: OwnRedis) -> None:
    status = Path(f"/proc/{own_redis.pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    if processes.is_root():
        assert all(uid != "0" for uid in uids), status
    else:
        assert uids[0] == str(os.geteuid())
    for private in (redis_acl.secrets_file(own_redis.state_dir), own_redis.node.conf):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    config = own_redis.node.conf.read_text()
    for password in own_redis.users.passwords.values():
        if password != own_redis.users.passwords[RedisUser.REPLICA]:  # masterauth: replicas must send it
            assert password not in config


def test_services_env_logs_clients_in_as_the_role_asked_for(own_redis: OwnRedis) -> None:
    settings = Settings(state_dir=own_redis.state_dir, redis_url=None)
    app = redis_acl.client_environment(settings)
    assert app["LOCKSTEP_REDIS_USERNAME"] == RedisUser.APP.value
    serving = redis_acl.client_environment(settings, RedisUser.SERVING)
    client = own_redis.client(RedisUser.SERVING, serving["LOCKSTEP_REDIS_PASSWORD"])
    assert client.ping()
    # A LOCKSTEP_REDIS_URL server is the user's: its login is theirs to configure.
    assert redis_acl.client_environment(settings.model_copy(update={"redis_url": own_redis.node.url})) == {}


def test_the_redis_cluster_forms_with_acl_users_and_replicas_log_in_to_their_primaries() -> None:
    """Six nodes on ports of this test (6441-6446, buses 16441-16446), created by `redis-cli --cluster
    create` as our admin user; a replica links up only if it logs in to its primary (masteruser)."""
    state_dir = Path(tempfile.mkdtemp(prefix="lockstep-redis-cluster-acl-"))
    state_dir.chmod(0o755)
    settings = Settings(state_dir=state_dir, topology="cluster", cluster_redis_port=6441, redis_url=None)
    layout = Layout.of(settings)
    users = redis_acl.ensure(state_dir)
    try:
        started = redis_cluster.start(layout, Console(stderr=True), users, settings.redis_system_user)
        assert len(started) == len(layout.cluster_redis)
        view = redis_cluster.probe(layout.cluster_redis, users.login(RedisUser.ADMIN))
        assert view.healthy, view.detail  # 3 primaries, each with a linked replica
        # Processes reach it as they do any cluster: from the settings, logged in as the app user.
        stores = {
            **settings.cluster_stores(),
            "redis_username": RedisUser.APP.value,
            "redis_password": SecretStr(users.passwords[RedisUser.APP]),
        }
        client = checked_client(settings.model_copy(update=stores))  # the startup check of every node
        keys = [f"lockstep-acl-test:{i}" for i in range(30)]
        for key in keys:
            client.set(key, key)
        assert [client.get(key) for key in keys] == [key.encode() for key in keys]
        client.close()
        for node in layout.cluster_redis:
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(port=node.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)).ping()
            pid = redis_server.running_pid(node)
            assert pid is not None
            uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
            assert uid != "0" or not processes.is_root()
    finally:
        redis_cluster.stop(layout)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_serving_starts_and_reads_user_data_as_the_read_only_user(own_redis: OwnRedis) -> None:
    settings = Settings(
        development=True,
        redis_url=own_redis.node.url,
        redis_username=RedisUser.SERVING.value,
        redis_password=own_redis.users.passwords[RedisUser.SERVING],
    )
    own_redis.client(RedisUser.APP).zadd(Keys(settings.key_prefix).profile_users(), {"u1": 0, "u2": 0})

    async def users() -> httpx.Response:
        app = create_serving(settings)
        async with app.router.lifespan_context(app):  # its startup check, as the serving user
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
                admin = settings.admin_keys[0].get_secret_value()
                return await client.get("/v1/users", headers={"Authorization": f"Bearer {admin}"})

    response = asyncio.run(users())
    assert response.status_code == 200, response.text
    assert response.json()["users"] == ["u1", "u2"]
