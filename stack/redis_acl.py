"""The ACL users of our own Redis: one per role, passwords made at first start, none may CONFIG SET/FLUSH.

The passwords live in `<state dir>/redis-users.json` (mode 0600, the user who ran `services up`); the
redis.conf we write carries only their SHA-256 (and, in the cluster, the replication password, which
replicas must send: that file is 0600 and owned by the Redis user). `default` has a password made at each
start and never kept, so a client without a user and password gets NOAUTH and nobody can log in as it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from contract.redis_clients import login_options
from contract.settings import StackSettings


class RedisUser(StrEnum):
    """Who logs in to our Redis."""

    ADMIN = "lockstep-admin"  # `lockstep services` itself: probes, creating the cluster
    APP = "lockstep-app"  # the orchestrator, the indexer, training, the CLI and the tests: read/write
    SERVING = "lockstep-serving"  # serving: reads only
    REPLICA = "lockstep-replica"  # a cluster replica syncing from its primary (masteruser)


# What every process's startup check reads (contract.redis_setup): INFO, CONFIG GET of the persistence and
# listpack settings, CLUSTER INFO/SLOTS/SHARDS (a cluster client's slot map). @dangerous holds CONFIG SET,
# FLUSHALL, FLUSHDB, DEBUG, KEYS, SHUTDOWN, MONITOR, REPLICAOF, MIGRATE, RESTORE, SAVE, ACL and the rest.
_READ_SETUP = ("+info", "+config|get")
_RULES: dict[RedisUser, tuple[str, ...]] = {
    RedisUser.ADMIN: ("~*", "&*", "+@all", "-@dangerous", *_READ_SETUP, "+cluster", "+role"),
    # KEYS: the tests' one-call snapshot of their prefix (it blocks the server while it runs, but neither
    # writes nor reads anything the user could not SCAN). RESTORE: `lockstep migrate-keys` moves each key
    # with DUMP/RESTORE (Redis checks the payload's checksum; it writes only what SET could).
    RedisUser.APP: ("~*", "&*", "+@all", "-@dangerous", *_READ_SETUP, "+keys", "+restore"),
    RedisUser.SERVING: (
        "~*",
        "resetchannels",
        "+@read",
        "+@connection",
        "-@dangerous",
        *_READ_SETUP,
        "+cluster|info",
        "+cluster|slots",
        "+cluster|shards",
        "+cluster|nodes",
        "+cluster|myid",
    ),
    RedisUser.REPLICA: ("resetkeys", "resetchannels", "+psync", "+replconf", "+ping"),
}


@dataclass(frozen=True)
class RedisUsers:
    """The password of each of our users."""

    passwords: dict[RedisUser, str]

    def login(self, user: RedisUser) -> dict[str, str]:
        """redis-py keyword arguments that log in as `user`."""
        return {"username": user.value, "password": self.passwords[user]}

    def acl_lines(self) -> tuple[str, ...]:
        """`user` directives for redis.conf: `default` locked, each of ours with its password's SHA-256."""
        # Not `default off`: Redis 7.0 replays the AOF as `default`, and its EXEC re-checks that user's ACL
        # (redis#14541, fixed after 7.0.15), so with `default` off every MULTI/EXEC and script effect in the
        # AOF was dropped at restart: acknowledged writes lost (found by the crasher). `default` keeps the
        # app's rules behind a password nobody has.
        unusable = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
        lines = [f"user default on #{unusable} resetchannels {' '.join(_RULES[RedisUser.APP])}"]
        for user, rules in _RULES.items():
            digest = hashlib.sha256(self.passwords[user].encode()).hexdigest()
            lines.append(f"user {user.value} on #{digest} {' '.join(rules)}")
        return tuple(lines)

    def replication_lines(self) -> tuple[str, ...]:
        """What a replica sends its primary (the cluster's nodes are each other's replicas)."""
        return (f"masteruser {RedisUser.REPLICA.value}", f'masterauth "{self.passwords[RedisUser.REPLICA]}"')


def secrets_file(state_dir: Path) -> Path:
    """Where the passwords are kept."""
    return state_dir / "redis-users.json"


def load(state_dir: Path) -> RedisUsers | None:
    """The users of the Redis started from `state_dir`; None before the first secured start."""
    try:
        raw = json.loads(secrets_file(state_dir).read_text())
    except FileNotFoundError:
        return None
    return RedisUsers({user: str(raw[user.value]) for user in RedisUser})


def ensure(state_dir: Path) -> RedisUsers:
    """The users, generating and storing passwords (0600) at the first start."""
    found = load(state_dir)
    if found is not None:
        return found
    users = RedisUsers({user: secrets.token_urlsafe(32) for user in RedisUser})
    path = secrets_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 in one step: the passwords are never readable by anyone else, not even briefly.
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({user.value: password for user, password in users.passwords.items()}, out)
    path.with_suffix(".tmp").replace(path)
    return users


def admin_login(settings: StackSettings) -> dict[str, Any]:
    """How `services` logs in to Redis: to ours as our admin user, to any other with the client settings.

    Ours means at our address (StackSettings.redis_is_ours) with our users file in state_dir: a URL at our
    port from a state dir that started nothing (a test's, say) names a server someone else logs in to. A
    server of ours started before it had users takes no login.
    """
    users = load(settings.state_dir) if settings.redis_is_ours else None
    if users is not None:
        return users.login(RedisUser.ADMIN)
    return {} if settings.redis_url is None else login_options(settings)


def client_environment(settings: StackSettings, user: RedisUser = RedisUser.APP) -> dict[str, str]:
    """LOCKSTEP_REDIS_USERNAME/PASSWORD of `user` of our Redis (none for a LOCKSTEP_REDIS_URL server
    elsewhere, whose login the user configures, nor for a server started before it had users)."""
    users = load(settings.state_dir) if settings.redis_is_ours else None
    if users is None:
        return {}
    return {"LOCKSTEP_REDIS_USERNAME": user.value, "LOCKSTEP_REDIS_PASSWORD": users.passwords[user]}
