"""Checks a version's vectors pass before anything is written: one error class naming the file and row."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from contract.keys import Kind
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import DTYPE, Matrix
from contract.wire import ENTITY_ID

# One C-level regex pass over all ids joined by newlines; the per-id loop only runs to name the bad row.
_ALL_IDS = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,127}\n)*")

# Which kinds a family stores. Users of indirect families are *aggregated* from attribute vectors by the
# orchestrator at request time, so a stored user vector would be a second, conflicting truth: refused.
# Items of indirect-indirect may be stored (precomputed sums) or left to the orchestrator to aggregate.
REQUIRED: dict[Family, frozenset[Kind]] = {
    Family.DIRECT_DIRECT: frozenset({Kind.USER, Kind.ITEM}),
    Family.INDIRECT_DIRECT: frozenset({Kind.ITEM, Kind.ATTRIBUTE}),
    Family.INDIRECT_INDIRECT: frozenset({Kind.ATTRIBUTE}),
}
ALLOWED: dict[Family, frozenset[Kind]] = {
    Family.DIRECT_DIRECT: frozenset({Kind.USER, Kind.ITEM}),
    Family.INDIRECT_DIRECT: frozenset({Kind.ITEM, Kind.ATTRIBUTE}),
    Family.INDIRECT_INDIRECT: frozenset({Kind.ITEM, Kind.ATTRIBUTE}),
}
_ARG = {Kind.USER: "users", Kind.ITEM: "items", Kind.ATTRIBUTE: "attributes"}


class PublishError(Exception):
    """A publish, registry or retention request refused; the message says what, where and which row."""


def check_kinds(etype: EmbeddingType, given: Sequence[Kind]) -> None:
    """Refuse kinds the type's family forbids, and missing kinds it needs."""
    for kind in given:
        if kind not in ALLOWED[etype.family]:
            why = (
                "its users are aggregated from attribute vectors by the orchestrator"
                if kind is Kind.USER
                else "it has no attribute vectors"
            )
            raise PublishError(f"{_ARG[kind]}: type {etype.name!r} is {etype.family.value}; {why}")
    missing = sorted(_ARG[kind] for kind in REQUIRED[etype.family] - set(given))
    if missing:
        raise PublishError(
            f"type {etype.name!r} is {etype.family.value} and needs {', '.join(missing)} vectors as well"
        )


def checked_matrix(
    etype: EmbeddingType, kind: Kind, ids: Sequence[str], matrix: npt.ArrayLike, source: str
) -> Matrix:
    """The matrix as C-contiguous little-endian float32 after every check passes, else PublishError."""
    where = source or _ARG[kind]
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise PublishError(f"{where}: vectors must be a 2-d matrix (rows x dim), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise PublishError(f"{where}: vectors must be float32, got dtype {array.dtype}")
    if array.shape[1] != etype.dim:
        raise PublishError(
            f"{where}: vectors have dim {array.shape[1]}, type {etype.name!r} has dim {etype.dim}"
        )
    if array.shape[0] != len(ids):
        raise PublishError(f"{where}: {len(ids)} ids but {array.shape[0]} vector rows")
    if not ids:
        raise PublishError(f"{where}: no vectors")
    check_ids(etype, kind, ids, where)
    # Convert first: a float64 value beyond float32's range becomes inf, and must be caught as such.
    with np.errstate(over="ignore", invalid="ignore"):
        vectors = np.ascontiguousarray(array, dtype=DTYPE)
    # min and max propagate NaN and show ±inf, without a full boolean temporary in the common case.
    if not (np.isfinite(vectors.min()) and np.isfinite(vectors.max())):
        finite = np.isfinite(vectors).all(axis=1)
        row = int(np.argmin(finite))
        raise PublishError(f"{where}: row {row} (id {ids[row]!r}) holds NaN or infinity")
    if etype.similarity is Similarity.COSINE:
        # A zero vector has no direction: cosine is undefined and Lucene refuses it at index time.
        nonzero = vectors.any(axis=1)
        if not nonzero.all():
            row = int(np.argmin(nonzero))
            raise PublishError(f"{where}: row {row} (id {ids[row]!r}) is all zeros; cosine needs a direction")
    return vectors


def check_ids(etype: EmbeddingType, kind: Kind, ids: Sequence[str], where: str) -> None:
    """Refuse empty, malformed, duplicate ids, and attribute ids outside the type's namespaces."""
    if not _ids_well_formed(ids):
        for row, entity in enumerate(ids):
            if not isinstance(entity, str) or not ENTITY_ID.match(entity) or "\n" in entity:
                what = "is empty" if entity == "" else f"must match {ENTITY_ID.pattern}"
                raise PublishError(f"{where}: row {row}: id {entity!r} {what}")
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for row, entity in enumerate(ids):
            if entity in seen:
                raise PublishError(f"{where}: row {row}: id {entity!r} repeats row {seen[entity]}")
            seen[entity] = row
    if kind is Kind.ATTRIBUTE:
        allowed = set(etype.attribute_namespaces)
        for row, entity in enumerate(ids):
            namespace, sep, rest = entity.partition(":")
            if not sep or not rest or namespace not in allowed:
                raise PublishError(
                    f"{where}: row {row}: attribute id {entity!r} must be 'namespace:id' with a namespace "
                    f"of type {etype.name!r}: {', '.join(etype.attribute_namespaces)}"
                )


def _ids_well_formed(ids: Sequence[str]) -> bool:
    # C-level join and regex instead of a Python loop: this runs on every publish of every vector.
    try:
        joined = "\n".join(ids) + "\n"
    except TypeError:  # a non-string id
        return False
    # An id holding a newline would pass as two lines: the newline count catches it.
    return joined.count("\n") == len(ids) and _ALL_IDS.fullmatch(joined) is not None
