"""Which Redis `services` logs in to with our users: ours (no URL, or a URL at our local ports), no other.

No server: the decision and the logins it picks are read from the settings and the users file alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from contract.settings import Settings
from stack import redis_acl
from stack.redis_acl import RedisUser


def _settings(state_dir: Path, redis_url: str | None, seeds: list[str] | None = None) -> Settings:
    """Our single server on 6390, our cluster on 7341-7346, and the login a user configured for theirs."""
    return Settings(
        state_dir=state_dir,
        redis_url=redis_url,
        redis_cluster_nodes=seeds or [],
        redis_port=6390,
        cluster_redis_port=7341,
        redis_username="their-user",
        redis_password=SecretStr("their-password"),
    )


@pytest.mark.parametrize(
    ("redis_url", "seeds"),
    [
        (None, None),
        ("redis://127.0.0.1:6390/0", None),  # the single topology's server
        ("redis://localhost:7343", None),  # a node of the cluster topology
        # The cluster demo's stores (StackSettings.cluster_stores): the first node, every node as a seed.
        ("redis://127.0.0.1:7341", [f"127.0.0.1:{7341 + i}" for i in range(6)]),
    ],
)
def test_our_own_redis_is_logged_in_to_with_our_users(
    tmp_path: Path, redis_url: str | None, seeds: list[str] | None
) -> None:
    users = redis_acl.ensure(tmp_path)
    settings = _settings(tmp_path, redis_url, seeds)
    assert settings.redis_is_ours
    assert redis_acl.admin_login(settings) == users.login(RedisUser.ADMIN)
    assert redis_acl.client_environment(settings, RedisUser.SERVING) == {
        "LOCKSTEP_REDIS_USERNAME": RedisUser.SERVING.value,
        "LOCKSTEP_REDIS_PASSWORD": users.passwords[RedisUser.SERVING],
    }


@pytest.mark.parametrize(
    ("redis_url", "seeds"),
    [
        ("redis://10.0.0.5:6390/0", None),  # our port, another host
        ("redis://127.0.0.1:6379/0", None),  # another port (a system redis-server, say)
        ("redis://127.0.0.1:7347", None),  # one past the cluster's 6 nodes
        ("rediss://127.0.0.1:6390/0", None),  # ours speak no TLS
        # The URL is ours but a seed is not: our passwords never go to a server we did not start.
        ("redis://127.0.0.1:7341", ["127.0.0.1:7341", "redis.example.com:7342"]),
    ],
)
def test_a_redis_elsewhere_is_logged_in_to_as_the_user_configured(
    tmp_path: Path, redis_url: str, seeds: list[str] | None
) -> None:
    redis_acl.ensure(tmp_path)
    settings = _settings(tmp_path, redis_url, seeds)
    assert not settings.redis_is_ours
    login = redis_acl.admin_login(settings)
    assert (login["username"], login["password"]) == ("their-user", "their-password")
    assert redis_acl.client_environment(settings) == {}


def test_our_redis_started_before_it_had_users_is_logged_in_to_without_any(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    assert redis_acl.admin_login(settings) == {}
    assert redis_acl.client_environment(settings) == {}


def test_a_url_at_our_address_without_our_users_file_keeps_the_login_configured(tmp_path: Path) -> None:
    # The demo test's case: a state dir of its own, LOCKSTEP_REDIS_URL naming the test stack's server.
    settings = _settings(tmp_path, "redis://127.0.0.1:6390/0")
    login = redis_acl.admin_login(settings)
    assert (login["username"], login["password"]) == ("their-user", "their-password")
    assert redis_acl.client_environment(settings) == {}
