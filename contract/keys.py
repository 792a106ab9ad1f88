"""The Redis key schema: every key any process reads or writes is built here, and only here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a stored vector embeds."""

    USER = "user"
    ITEM = "item"
    ATTRIBUTE = "attr"  # id is "namespace:id", e.g. "tag:fantasy", "item:42"


@dataclass(frozen=True)
class Keys:
    """Key builder for one key prefix (tests use a prefix each, so they never collide)."""

    prefix: str

    def types(self) -> str:
        """Hash: type name -> EmbeddingType JSON (the type registry)."""
        return f"{self.prefix}:types"

    def manifest(self, type_name: str, version: str) -> str:
        """String: a version's Manifest JSON. Its presence is what makes the version published."""
        return f"{self.prefix}:manifest:{type_name}:{version}"

    def published(self, type_name: str) -> str:
        """Sorted set: published version ids of a type, scored by publish sequence.

        Written in the same MULTI as the manifest, so readers see both or neither.
        """
        return f"{self.prefix}:published:{type_name}"

    def publish_seq(self, type_name: str) -> str:
        """Counter: the last publish sequence number handed out for a type."""
        return f"{self.prefix}:seq:{type_name}"

    def vectors(self, type_name: str, version: str, kind: Kind, bucket: int) -> str:
        """Hash: entity id -> little-endian float32 bytes, one field per vector, for one bucket.

        A version's vectors of a kind are spread over `Manifest.buckets` small hashes, an id's bucket
        being `contract.vectors.bucket_of(id, buckets)`. Small hashes stay in Redis's compact listpack
        encoding; a key per vector, or one big hash per kind, would exceed the 4*dim+100 bytes budget.
        """
        return f"{self.prefix}:vec:{type_name}:{version}:{kind.value}:{bucket}"

    def vectors_pattern(self, type_name: str, version: str) -> str:
        """SCAN pattern matching every bucket hash of a version, all kinds ("*" as version: all versions)."""
        return f"{self.prefix}:vec:{type_name}:{version}:*"

    def vectors_pending(self, type_name: str, version: str) -> str:
        """String: set while a version's bucket hashes may hold leftovers (a publish or delete under way).

        Set before the first vector is written (and removed with the manifest's MULTI), and by a delete
        before its first UNLINK: a publisher finding it clears the version's buckets by SCAN first.
        Without it there is nothing to clear, so publishing never scans the whole keyspace.
        """
        return f"{self.prefix}:vecpending:{type_name}:{version}"

    @staticmethod
    def vectors_version(key: str | bytes) -> str:
        """The version id in a `vectors` key (version ids and kinds hold no ':')."""
        text = key.decode() if isinstance(key, bytes) else key
        return text.rsplit(":", 3)[1]

    def in_use(self, type_name: str) -> str:
        """String: the version id serving uses; moved only by compare-and-set."""
        return f"{self.prefix}:in_use:{type_name}"

    def audit(self, type_name: str) -> str:
        """Stream: one entry per in_use change (who, when, from, to, why)."""
        return f"{self.prefix}:audit:{type_name}"

    def indexed(self, type_name: str) -> str:
        """Hash: version id -> IndexedLocation JSON, for versions fully indexed and visible to search."""
        return f"{self.prefix}:indexed:{type_name}"

    def profile(self, user_id: str) -> str:
        """String: a user's recent interactions as Profile JSON (raw user data, not versioned)."""
        return f"{self.prefix}:profile:{user_id}"

    def catalog_changes(self) -> str:
        """Stream: item catalog changes (upsert/delete) the incremental indexer consumes."""
        return f"{self.prefix}:catalog:changes"

    def indexer_lock(self, target: str) -> str:
        """String with expiry: held by the one indexer cycle running against `target`."""
        return f"{self.prefix}:lock:indexer:{target}"

    def publish_lock(self, type_name: str, version: str) -> str:
        """String with expiry: held while a version is being published."""
        return f"{self.prefix}:lock:publish:{type_name}:{version}"

    def all_keys_pattern(self) -> str:
        """SCAN pattern matching every key of this prefix (tests clean up with it)."""
        return f"{self.prefix}:*"
