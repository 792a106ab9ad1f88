"""API keys by role: who may call what. Keys come from settings and are never logged."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

from contract.settings import DEV_KEYS, OrchestratorSettings
from orchestrator.errors import Forbidden, Unauthorized


class Role(StrEnum):
    """What a key may do; admin may do everything."""

    READER = "reader"
    INDEXER = "indexer"
    ADMIN = "admin"


# Which roles each route level admits: reads serve serving and the indexer, writes only the indexer/admin.
ADMITTED: dict[Role, frozenset[Role]] = {
    Role.READER: frozenset({Role.READER, Role.INDEXER, Role.ADMIN}),
    Role.INDEXER: frozenset({Role.INDEXER, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its role and a loggable name (role and key position, never the key)."""

    role: Role
    actor: str


@dataclass(frozen=True)
class KeyRing:
    """Every configured key with the caller it authenticates."""

    entries: tuple[tuple[bytes, Caller], ...]
    development: bool = False

    @classmethod
    def of(cls, settings: OrchestratorSettings) -> KeyRing:
        """Collect the reader, indexer and admin keys (several per role, so keys can be rotated).

        The shipped dev-* keys are left out unless the development flag is set: they are public.
        """
        entries: list[tuple[bytes, Caller]] = []
        for role, secrets in (
            (Role.READER, settings.reader_keys),
            (Role.INDEXER, settings.indexer_keys),
            (Role.ADMIN, settings.admin_keys),
        ):
            for position, secret in enumerate(secrets, start=1):
                key = secret.get_secret_value()
                if key in DEV_KEYS and not settings.development:
                    continue
                entries.append((key.encode(), Caller(role, f"{role.value}#{position}")))
        return cls(tuple(entries), settings.development)

    def identify(self, presented: str | None) -> Caller:
        """The caller a presented key belongs to; compares against every key in constant time."""
        if not presented:
            raise Unauthorized(
                "authorization: missing API key (send Authorization: Bearer <key>, or X-API-Key)"
            )
        candidate = presented.encode()
        found: Caller | None = None
        # No early exit: the time taken must not reveal which key (or how much of one) matched.
        for key, caller in self.entries:
            if hmac.compare_digest(key, candidate) and found is None:
                found = caller
        if found is None and presented in DEV_KEYS and not self.development:
            raise Unauthorized(
                "authorization: development keys are refused outside development mode; configure your own "
                "keys (LOCKSTEP_READER_KEYS, LOCKSTEP_INDEXER_KEYS, LOCKSTEP_ADMIN_KEYS) or set "
                "LOCKSTEP_DEVELOPMENT=1"
            )
        if found is None:
            raise Unauthorized("authorization: unknown API key")
        return found


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("authorization: expected 'Bearer <key>'")
        return token.strip()
    return x_api_key


def admit(caller: Caller, level: Role) -> Caller:
    """Refuse a caller whose role is not admitted at `level`."""
    if caller.role not in ADMITTED[level]:
        allowed = ", ".join(sorted(r.value for r in ADMITTED[level]))
        raise Forbidden(f"authorization: role {caller.role.value} may not call this route (needs {allowed})")
    return caller
