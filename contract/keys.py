"""The Redis key schema: every key any process reads or writes is built here, and only here.

Hash tags (the part in braces, which alone decides a key's Redis Cluster slot) keep every atomic operation
on one slot: a type's control keys (manifests, published set, sequence, pending markers, in_use, audit,
indexed, publish locks) share the tag `{type}`; a version's vector buckets are spread over slots on
purpose, a tag per group of buckets. The item catalog (items, their id set, the schema record and the change
stream) shares the tag `{catalog}`, so an item is written together with its change event. Keys without braces
(the registry, profiles and their index, the indexer locks) are each used alone and hash on their whole name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contract.vectors import group_of


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

    def type_tag(self, type_name: str) -> str:
        """The start of every control key of a type: the prefix and the type's hash tag."""
        return f"{self.prefix}:{{{type_name}}}"

    def manifest(self, type_name: str, version: str) -> str:
        """String: a version's Manifest JSON. Its presence is what makes the version published."""
        return f"{self.type_tag(type_name)}:manifest:{version}"

    def published(self, type_name: str) -> str:
        """Sorted set: published version ids of a type, scored by publish sequence.

        Written by the same script as the manifest, so readers see both or neither.
        """
        return f"{self.type_tag(type_name)}:published"

    def publish_seq(self, type_name: str) -> str:
        """Counter: the last publish sequence number handed out for a type."""
        return f"{self.type_tag(type_name)}:seq"

    def vectors(self, type_name: str, version: str, kind: Kind, bucket: int) -> str:
        """Hash: entity id -> little-endian float32 bytes, one field per vector, for one bucket.

        A version's vectors of a kind are spread over `Manifest.buckets` small hashes, an id's bucket
        being `contract.vectors.bucket_of(id, buckets)`. Small hashes stay in Redis's compact listpack
        encoding; a key per vector, or one big hash per kind, would exceed the 4*dim+100 bytes budget.
        Buckets of one `contract.vectors.group_of` share a tag, so the groups of a version spread over a
        cluster's slots while one script still sees a whole group.
        """
        tag = f"{type_name}:{version}:{kind.value}:{group_of(bucket)}"
        return f"{self.prefix}:{{{tag}}}:vec:{bucket}"

    def vectors_pending(self, type_name: str) -> str:
        """Hash: version id -> bucket counts ("user,item,attr") whose hashes may hold leftovers.

        A version gets a field before its first vector is written (removed with the manifest's commit),
        and from a delete before its first UNLINK: a publisher finding one clears those buckets first, and
        GC clears them for versions without a manifest. So nothing ever scans the keyspace for vectors.
        """
        return f"{self.type_tag(type_name)}:pending"

    def in_use(self, type_name: str) -> str:
        """String: the version id serving uses; moved only by compare-and-set."""
        return f"{self.type_tag(type_name)}:in_use"

    def audit(self, type_name: str) -> str:
        """Stream: one entry per in_use change (who, when, from, to, why)."""
        return f"{self.type_tag(type_name)}:audit"

    def indexed(self, type_name: str) -> str:
        """Hash: version id -> IndexedLocation JSON, for versions fully indexed and visible to search."""
        return f"{self.type_tag(type_name)}:indexed"

    def publish_lock(self, type_name: str, version: str) -> str:
        """String with expiry: held while a version is being published (or its buckets deleted)."""
        return f"{self.type_tag(type_name)}:lock:publish:{version}"

    def profile(self, user_id: str) -> str:
        """String: a user's recent interactions as Profile JSON (raw user data, not versioned)."""
        return f"{self.prefix}:profile:{user_id}"

    def profile_users(self) -> str:
        """Sorted set: every user id with a stored profile, all scored 0 (so listed in id order).

        Written with the profiles; what the explorer lists users from, so no request scans the keyspace.
        """
        return f"{self.prefix}:profile-users"

    def catalog_tag(self) -> str:
        """The start of every catalog key: the prefix and the catalog's hash tag."""
        return f"{self.prefix}:{{catalog}}"

    def catalog_item(self, item_id: str) -> str:
        """Hash: one item's fields, each value JSON-encoded (a patch writes only the fields it names)."""
        return f"{self.catalog_tag()}:item:{item_id}"

    def catalog_ids(self) -> str:
        """Set: the id of every item in the catalog."""
        return f"{self.catalog_tag()}:ids"

    def catalog_schema(self) -> str:
        """String: JSON of the item schema the catalog was first written with (name, fingerprint, fields)."""
        return f"{self.catalog_tag()}:schema"

    def catalog_changes(self) -> str:
        """Stream: item catalog changes (upsert/delete) the incremental indexer consumes."""
        return f"{self.catalog_tag()}:changes"

    def indexer_lock(self, target: str) -> str:
        """String with expiry: held by the one indexer cycle running against `target`."""
        return f"{self.prefix}:lock:indexer:{target}"

    def all_keys_pattern(self) -> str:
        """SCAN pattern matching every key of this prefix (tests and `redis migrate-keys` use it)."""
        return f"{self.prefix}:*"


@dataclass(frozen=True)
class LegacyKeys:
    """The schema before hash tags (no key shared a slot on purpose); read only to migrate it away."""

    prefix: str

    def published(self, type_name: str) -> str:
        """Sorted set of a type's published versions; its presence marks a type still in this schema."""
        return f"{self.prefix}:published:{type_name}"

    def manifest(self, type_name: str, version: str) -> str:
        """A version's manifest."""
        return f"{self.prefix}:manifest:{type_name}:{version}"

    def publish_seq(self, type_name: str) -> str:
        """The type's publish sequence."""
        return f"{self.prefix}:seq:{type_name}"

    def in_use(self, type_name: str) -> str:
        """The type's in_use version."""
        return f"{self.prefix}:in_use:{type_name}"

    def audit(self, type_name: str) -> str:
        """The type's in_use audit stream."""
        return f"{self.prefix}:audit:{type_name}"

    def indexed(self, type_name: str) -> str:
        """The type's indexed-versions hash."""
        return f"{self.prefix}:indexed:{type_name}"

    def vectors_pattern(self, type_name: str) -> str:
        """SCAN pattern of every vector bucket of the type: prefix:vec:type:version:kind:bucket."""
        return f"{self.prefix}:vec:{type_name}:*"

    @staticmethod
    def vectors_parts(key: str | bytes) -> tuple[str, Kind, int]:
        """(version, kind, bucket) of a vector bucket key (version ids, kinds and types hold no ':')."""
        text = key.decode() if isinstance(key, bytes) else key
        _, version, kind, bucket = text.rsplit(":", 3)
        return version, Kind(kind), int(bucket)

    def pending_pattern(self, type_name: str) -> str:
        """SCAN pattern of the type's leftover markers: prefix:vecpending:type:version."""
        return f"{self.prefix}:vecpending:{type_name}:*"

    def publish_lock_pattern(self, type_name: str) -> str:
        """SCAN pattern of the type's publish locks: prefix:lock:publish:type:version."""
        return f"{self.prefix}:lock:publish:{type_name}:*"
