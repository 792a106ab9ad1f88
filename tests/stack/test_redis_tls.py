"""Our Redis clients over TLS (rediss://) with a CA file and an ACL user, against Debian's redis-server.

Debian's redis-server 7.0 is built with TLS; `services up` does not start it with TLS (a loopback-only
server gains nothing from it), so the server here is one of the test's own.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from tls_support import Certificates, free_port, make_certificates

from contract.redis_clients import async_client, sync_client
from contract.redis_setup import checked_client
from contract.settings import Settings
from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE

USER, PASSWORD = "lockstep-app", "a-long-test-password"


@dataclass(frozen=True)
class TlsRedis:
    """A redis-server speaking only TLS, with one ACL user."""

    port: int
    certificates: Certificates

    def settings(self, base: Settings, **update: object) -> Settings:
        """`base` pointed at this server, logged in, verifying it with our CA."""
        return base.model_copy(
            update={
                "redis_url": f"rediss://127.0.0.1:{self.port}/0",
                "redis_topology": "standalone",
                "redis_cluster_nodes": [],
                "redis_username": USER,
                "redis_password": SecretStr(PASSWORD),
                "redis_ca_file": self.certificates.ca,
                **update,
            }
        )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    """Started from a config of its own; stopped by its own pid afterwards."""
    certificates = make_certificates(tmp_path)
    port = free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"tls-port {port}",
                "bind 127.0.0.1",
                f"tls-cert-file {certificates.cert}",
                f"tls-key-file {certificates.key}",
                f"tls-ca-cert-file {certificates.ca}",
                "tls-auth-clients no",
                f'dir "{tmp_path}"',
                'save ""',
                # What every process's startup check requires (contract.redis_setup).
                "appendonly yes",
                "maxmemory-policy noeviction",
                f"hash-max-listpack-entries {LISTPACK_ENTRIES}",
                f"hash-max-listpack-value {LISTPACK_VALUE}",
                "user default off",
                f"user {USER} on >{PASSWORD} ~* &* +@all -@dangerous +info +config|get",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    server = TlsRedis(port, certificates)
    try:
        probe = sync_client(server.settings(Settings()), timeout=1)
        deadline = time.monotonic() + 30
        while True:  # a condition wait: until it answers over TLS
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "redis-server exited: is it built without TLS?"
                assert time.monotonic() < deadline, "redis-server did not answer over TLS"
                time.sleep(0.05)
        probe.close()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_sync_and_async_clients_log_in_over_verified_tls(tls_redis: TlsRedis, settings: Settings) -> None:
    secured = tls_redis.settings(settings)
    client = sync_client(secured)
    client.set(f"{settings.key_prefix}:tls", b"yes")
    assert client.get(f"{settings.key_prefix}:tls") == b"yes"
    client.close()

    async def read() -> bytes | None:
        aclient = async_client(secured)
        try:
            value: bytes | None = await aclient.get(f"{settings.key_prefix}:tls")
            return value
        finally:
            await aclient.aclose()

    assert asyncio.run(read()) == b"yes"
    checked = checked_client(secured)  # the startup check every process runs, over TLS
    checked.close()


@pytest.mark.parametrize(
    ("wrong", "error"),
    [
        ({"redis_ca_file": None}, redis.ConnectionError),  # the system's CAs do not know ours
        ({"redis_url": None}, redis.ConnectionError),  # plain redis:// to the stack port: not this server
        ({"redis_password": SecretStr("not-the-password")}, redis.AuthenticationError),
    ],
    ids=["unverified certificate", "no TLS", "wrong password"],
)
def test_an_unverified_server_or_a_wrong_password_is_refused(
    tls_redis: TlsRedis, settings: Settings, wrong: dict[str, object], error: type[Exception]
) -> None:
    update = dict(wrong)
    if "redis_url" in update:
        update["redis_url"] = f"redis://127.0.0.1:{tls_redis.port}/0"
    client = sync_client(tls_redis.settings(settings, **update), timeout=2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(error):
        client.ping()
    client.close()
