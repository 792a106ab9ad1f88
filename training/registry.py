"""The embedding type registry: one Redis hash, type name -> EmbeddingType JSON."""

from __future__ import annotations

from contract.keys import Keys
from contract.redis_clients import SyncRedis
from contract.types import EmbeddingType
from training.validation import PublishError


class UnknownType(PublishError):  # noqa: N818 - named like the API errors
    """No embedding type of that name is registered."""


class TypeConflict(PublishError):  # noqa: N818 - named like the API errors
    """A type of that name is registered with a different definition."""


def register_type(client: SyncRedis, keys: Keys, etype: EmbeddingType) -> None:
    """Register a type; the same definition again is a no-op, a different one is refused."""
    # HSETNX makes two concurrent registrations of one name agree on a single winner.
    if client.hsetnx(keys.types(), etype.name, etype.model_dump_json()):
        return
    existing = get_type(client, keys, etype.name)
    if existing != etype:
        changed = sorted(
            field for field in EmbeddingType.model_fields if getattr(existing, field) != getattr(etype, field)
        )
        raise TypeConflict(
            f"type {etype.name!r} is already registered with a different {', '.join(changed)}; "
            "a type's definition is immutable, register a new name"
        )


def get_type(client: SyncRedis, keys: Keys, name: str) -> EmbeddingType:
    """The registered type `name`, or UnknownType naming it."""
    raw = client.hget(keys.types(), name)
    if raw is None:
        known = sorted(_text(field) for field in client.hkeys(keys.types()))
        raise UnknownType(
            f"unknown embedding type {name!r}; registered: {', '.join(known) or 'none'} "
            "(register it with `lockstep types register`)"
        )
    return EmbeddingType.model_validate_json(raw)


def list_types(client: SyncRedis, keys: Keys) -> list[EmbeddingType]:
    """Every registered type, by name."""
    raw = client.hgetall(keys.types())
    return sorted((EmbeddingType.model_validate_json(value) for value in raw.values()), key=lambda t: t.name)


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
