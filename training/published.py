"""A published version read back from Redis as Embeddings: what `lockstep eval --published` scores."""

from __future__ import annotations

from typing import cast

from contract.keys import Keys, Kind
from contract.manifest import Manifest
from contract.redis_clients import SyncRedis
from contract.vectors import decode
from training.models.embeddings import Embeddings, Vectors
from training.publish import read_manifest
from training.retention import list_versions


def published_manifest(client: SyncRedis, keys: Keys, type_name: str, version: str | None) -> Manifest:
    """The manifest of `version`, or of the type's newest published version (ValueError when none)."""
    if version is not None:
        manifest = read_manifest(client, keys, type_name, version)
        if manifest is None:
            raise ValueError(f"--version: {type_name} has no published version {version}")
        return manifest
    versions = list_versions(client, keys, type_name)
    if not versions:
        raise ValueError(f"--type: {type_name} has no published version")
    return versions[-1]


def load_embeddings(client: SyncRedis, keys: Keys, manifest: Manifest) -> Embeddings:
    """Every vector of the version, per kind, as stored (bucket by bucket)."""
    loaded: dict[Kind, Vectors | None] = {}
    for kind in Kind:
        if manifest.counts.of(kind) == 0:
            loaded[kind] = None
            continue
        ids: list[str] = []
        rows: list[bytes] = []
        for bucket in range(manifest.buckets.of(kind)):
            key = keys.vectors(manifest.type_name, manifest.version, kind, bucket)
            stored = cast(dict[bytes, bytes], client.hgetall(key))  # clients here never decode responses
            for entity, data in stored.items():
                ids.append(entity.decode())
                rows.append(data)
        if len(ids) != manifest.counts.of(kind):
            raise ValueError(
                f"{manifest.type_name} {manifest.version}: {len(ids)} {kind.value} vectors stored, "
                f"the manifest says {manifest.counts.of(kind)}"
            )
        loaded[kind] = Vectors(tuple(ids), decode(b"".join(rows), manifest.dim))
    return Embeddings(
        dim=manifest.dim,
        users=loaded[Kind.USER],
        items=loaded[Kind.ITEM],
        attributes=loaded[Kind.ATTRIBUTE],
        params={"version": manifest.version},
    )
