"""Publishing a version: validate everything, write vectors in pipelined chunks, then the manifest last."""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import NamedTuple

import numpy as np
import redis

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts, Manifest
from contract.types import EmbeddingType
from contract.vectors import Matrix, buckets_for, buckets_of
from contract.versions import Frame
from training.validation import PublishError, check_kinds, checked_matrix

__all__ = [
    "PublishError",
    "PublishResult",
    "VectorSet",
    "checksum",
    "publish",
    "read_manifest",
    "release_lock",
]

LOCK_TTL_SECONDS = 30.0

# Extends the publish lock only while we still hold it (a lock that expired and was taken is lost).
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Every bucket's field count in one command: a pipeline of ~1,000 HLENs costs more in redis-py's
# packing and parsing than the check is worth.
_HLENS = """
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = redis.call('HLEN', key) end
return counts
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, eq=False)
class VectorSet:
    """Ids and their vectors, row i belonging to ids[i]; `source` names the file it came from, if any."""

    ids: tuple[str, ...]
    matrix: np.ndarray  # (len(ids), dim) float32
    source: str = ""


class PublishResult(NamedTuple):
    """The version's manifest, and whether this call created it (False: identical content was there)."""

    manifest: Manifest
    created: bool


@dataclass(frozen=True)
class _Checked:
    kind: Kind
    ids: tuple[str, ...]
    vectors: Matrix

    @property
    def buckets(self) -> int:
        return buckets_for(len(self.ids))

    @cached_property
    def bucket_rows(self) -> np.ndarray:
        """Each row's bucket (contract.vectors.bucket_of)."""
        return buckets_of(self.ids, self.buckets)


def publish(
    client: redis.Redis,
    keys: Keys,
    etype: EmbeddingType,
    frame: Frame,
    *,
    users: VectorSet | None = None,
    items: VectorSet | None = None,
    attributes: VectorSet | None = None,
    trainer: Mapping[str, str] | None = None,
    chunk_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    lock_ttl_seconds: float = LOCK_TTL_SECONDS,
    lock_wait_seconds: float | None = None,
) -> PublishResult:
    """Publish one version of `etype` for `frame`; identical content again is a no-op, different refused.

    Everything is validated before the first write. Vectors go first, the manifest last together with
    the ZADD to the published set, so readers see the whole version or nothing.
    """
    if chunk_size < 1:
        raise PublishError(f"chunk_size must be >= 1, got {chunk_size}")
    trainer_info = dict(trainer or {})
    for name, value in trainer_info.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise PublishError(f"trainer: {name!r}={value!r} must map strings to strings")
    given = {Kind.USER: users, Kind.ITEM: items, Kind.ATTRIBUTE: attributes}
    present = [(kind, vs) for kind, vs in given.items() if vs is not None]
    check_kinds(etype, [kind for kind, _ in present])
    checked = [
        _Checked(kind, tuple(vs.ids), checked_matrix(etype, kind, vs.ids, vs.matrix, vs.source))
        for kind, vs in present
    ]
    records = [(c.kind, c.ids, c.vectors) for c in checked]
    version = frame.version_id

    existing = read_manifest(client, keys, etype.name, version)
    if existing is not None:
        return _settled(existing, checksum(records))

    lock_key = keys.publish_lock(etype.name, version)
    token = uuid.uuid4().hex
    ttl_ms = max(1, int(lock_ttl_seconds * 1000))
    # By default wait out one full lock lifetime: a publisher killed midway leaves its lock until expiry.
    wait = lock_ttl_seconds + 5.0 if lock_wait_seconds is None else lock_wait_seconds
    _acquire(client, lock_key, token, ttl_ms, wait, etype.name, version)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The checksum (mostly sha256 and numpy, which release the GIL) runs on another core while the
            # chunks are on the wire; only the manifest needs it.
            digest = pool.submit(checksum, records)
            # Another publisher of this version may have finished while we waited for the lock.
            existing = read_manifest(client, keys, etype.name, version)
            if existing is not None:
                return _settled(existing, digest.result())
            # No manifest: any bucket hash of this version is an invisible leftover of a killed publish
            # or delete, possibly with other content and other bucket counts. Those leave the pending
            # marker behind, so only then is the keyspace scanned.
            pending = keys.vectors_pending(etype.name, version)
            if client.set(pending, token, get=True) is not None:
                unlink_matching(client, keys.vectors_pattern(etype.name, version))
            _write_vectors(
                client, keys, etype, version, checked, chunk_size, progress, lock_key, token, ttl_ms
            )
            manifest = _commit(
                client, keys, etype, frame, checked, digest.result(), trainer_info, lock_key, token
            )
    finally:
        release_lock(client, lock_key, token)
    return PublishResult(manifest, True)


def release_lock(client: redis.Redis, lock_key: str, token: str) -> None:
    """Delete a lock only if `token` still holds it (an expired lock may belong to someone else now)."""
    client.eval(_RELEASE, 1, lock_key, token)


def unlink_matching(client: redis.Redis, pattern: str) -> int:
    """UNLINK every key matching a SCAN pattern, in batches; returns how many there were."""
    batch: list[bytes] = []
    removed = 0
    for key in client.scan_iter(match=pattern, count=10_000):
        batch.append(key)
        if len(batch) == 1000:
            removed += client.unlink(*batch)
            batch = []
    if batch:
        removed += client.unlink(*batch)
    return removed


def checksum(records: Sequence[tuple[Kind, Sequence[str], Matrix]]) -> str:
    """sha256 over every (kind, id, bytes) record in sorted order (byte layout: docs/publishing.md)."""
    digest = hashlib.sha256()
    for kind, ids, vectors in sorted(records, key=lambda record: record[0].value):
        if not len(ids):
            continue
        order = sorted(range(len(ids)), key=ids.__getitem__)
        digest.update(f"{kind.value}\n{len(ids)}\n".encode())
        digest.update("".join(ids[row] + "\n" for row in order).encode())
        digest.update(np.ascontiguousarray(vectors[np.asarray(order)], dtype="<f4").tobytes())
    return digest.hexdigest()


def read_manifest(client: redis.Redis, keys: Keys, type_name: str, version: str) -> Manifest | None:
    """A version's manifest, or None while it is not published."""
    raw = client.get(keys.manifest(type_name, version))
    return None if raw is None else Manifest.model_validate_json(raw)


def _settled(existing: Manifest, digest: str) -> PublishResult:
    if existing.checksum != digest:
        raise PublishError(
            f"version {existing.version} of type {existing.type_name!r} is already published with different "
            f"content (checksum {existing.checksum[:12]}…, yours {digest[:12]}…); versions are immutable, "
            "publish a new frame"
        )
    return PublishResult(existing, False)


def _acquire(
    client: redis.Redis, lock_key: str, token: str, ttl_ms: int, wait: float, type_name: str, version: str
) -> None:
    deadline = time.monotonic() + wait
    while not client.set(lock_key, token, nx=True, px=ttl_ms):
        if time.monotonic() >= deadline:
            raise PublishError(
                f"another publish of {type_name!r} version {version} holds {lock_key}; "
                "retry when it ends (the lock expires if its holder died)"
            )
        time.sleep(0.05)


def _write_vectors(
    client: redis.Redis,
    keys: Keys,
    etype: EmbeddingType,
    version: str,
    checked: Sequence[_Checked],
    chunk_size: int,
    progress: Callable[[int, int], None] | None,
    lock_key: str,
    token: str,
    ttl_ms: int,
) -> None:
    total = sum(len(c.ids) for c in checked)
    done = 0
    row_bytes = 4 * etype.dim
    if progress is not None:
        progress(0, total)
    for c in checked:
        if not c.ids:
            continue
        rows = c.bucket_rows
        # Rows sorted by bucket, so a chunk holds few long runs and each run is one HSET to one bucket.
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        blob = c.vectors[order].tobytes()  # encoded once; each field value is a slice of it
        # Ids hold no newline (validation.ENTITY_ID): encoding them as one string runs at C speed.
        encoded = "\n".join(c.ids).encode().split(b"\n")
        encoded_ids = [encoded[row] for row in order.tolist()]
        key_of = [keys.vectors(etype.name, version, c.kind, b).encode() for b in range(c.buckets)]
        for start in range(0, len(c.ids), chunk_size):
            end = min(start + chunk_size, len(c.ids))
            # Where the bucket changes inside the chunk: the runs' boundaries.
            cuts = [start, *(start + 1 + np.flatnonzero(rows[start + 1 : end] != rows[start : end - 1])), end]
            commands = [
                hset_command(key_of[rows[a]], encoded_ids[a:b], blob, int(a), row_bytes)
                for a, b in itertools.pairwise(cuts)
            ]
            if not _send_chunk(client, commands, lock_key, token, ttl_ms):
                raise PublishError(
                    f"lost the publish lock {lock_key} (it expired); the version stays unpublished, re-run"
                )
            done += end - start
            if progress is not None:
                progress(done, total)


def hset_command(key: bytes, ids: Sequence[bytes], blob: bytes, first_row: int, row_bytes: int) -> bytes:
    """One `HSET key id vector ...` in RESP, rows taken from `blob` starting at `first_row`.

    Packed here rather than by redis-py: its per-argument packing costs more than the network, and
    every value has the same length, so one bytes-format per vector is all it takes.
    """
    value_head = b"$%d\r\n" % row_bytes
    offsets = range(first_row * row_bytes, (first_row + len(ids)) * row_bytes, row_bytes)
    parts = [b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%b\r\n" % (2 + 2 * len(ids), len(key), key)]
    parts.extend(
        b"$%d\r\n%b\r\n%b%b\r\n" % (len(entity), entity, value_head, blob[offset : offset + row_bytes])
        for entity, offset in zip(ids, offsets, strict=True)
    )
    return b"".join(parts)


def _send_chunk(
    client: redis.Redis, commands: Sequence[bytes], lock_key: str, token: str, ttl_ms: int
) -> bool:
    """Send packed HSETs and the lock refresh in a single round trip; whether we still hold the lock."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        refresh = connection.pack_command("EVAL", _REFRESH, 1, lock_key, token, ttl_ms)  # type: ignore[no-untyped-call]
        connection.send_packed_command([*commands, *refresh])  # type: ignore[no-untyped-call]
        for _ in commands:
            connection.read_response()
        held = connection.read_response()
    except BaseException:
        # A reply may be left unread: this connection's stream is no longer in step, never reuse it.
        connection.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(connection)
    return bool(held)


def _commit(
    client: redis.Redis,
    keys: Keys,
    etype: EmbeddingType,
    frame: Frame,
    checked: Sequence[_Checked],
    digest: str,
    trainer: Mapping[str, str],
    lock_key: str,
    token: str,
) -> Manifest:
    version = frame.version_id
    manifest_key = keys.manifest(etype.name, version)
    counts = {c.kind.value: len(c.ids) for c in checked}
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(lock_key, manifest_key)  # type: ignore[no-untyped-call]
            if pipe.get(lock_key) != token.encode():
                raise PublishError(f"lost the publish lock {lock_key} before the manifest; re-run")
            for c in checked:
                _check_stored(client, keys, etype.name, version, c)
            # The seq is taken before MULTI (the manifest embeds it); a run dying here only leaves a gap.
            seq = int(client.incr(keys.publish_seq(etype.name)))
            manifest = Manifest(
                type_name=etype.name,
                version=version,
                seq=seq,
                frame_start=frame.start,
                frame_end=frame.end,
                dim=etype.dim,
                counts=Counts(**counts),
                buckets=Buckets.for_counts(Counts(**counts)),
                checksum=digest,
                created_at=datetime.now(UTC),
                trainer=dict(trainer),
            )
            pipe.multi()
            pipe.set(manifest_key, manifest.model_dump_json())
            pipe.zadd(keys.published(etype.name), {version: seq})
            pipe.delete(lock_key, keys.vectors_pending(etype.name, version))
            pipe.execute()
        except redis.WatchError as exc:
            raise PublishError(
                f"the publish lock {lock_key} or the manifest changed while committing {version}; re-run"
            ) from exc
    return manifest


def _check_stored(client: redis.Redis, keys: Keys, type_name: str, version: str, c: _Checked) -> None:
    """Every bucket holds exactly the vectors written to it (HLENs in one round trip)."""
    if not c.ids:
        return
    expected = np.bincount(c.bucket_rows, minlength=c.buckets)
    names = [keys.vectors(type_name, version, c.kind, bucket) for bucket in range(c.buckets)]
    stored = np.asarray(client.eval(_HLENS, len(names), *names), dtype=np.int64)
    if not np.array_equal(stored, expected):
        raise PublishError(
            f"{c.kind.value} vectors of {type_name!r} {version}: {int(stored.sum())} stored, "
            f"{len(c.ids)} written; something removed them meanwhile, re-run"
        )
