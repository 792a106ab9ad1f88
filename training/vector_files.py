"""Reading other teams' vector files (.npz, .npy + .ids.txt, .parquet) into VectorSets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training.publish import VectorSet
from training.validation import PublishError

FORMATS = """\
.npz      arrays `ids` (strings) and `vectors` (rows x dim float32), e.g. np.savez(p, ids=ids, vectors=m)
.npy      the (rows x dim) float32 matrix; its ids one per line in NAME.ids.txt beside it
.parquet  a string column `id` and a list<float> (or fixed_size_list) column `vector`"""


def read_vectors(path: Path) -> VectorSet:
    """Read one vector file; any problem is a PublishError naming the file (and the row, when one)."""
    if not path.is_file():
        raise PublishError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        ids, matrix = _npz(path)
    elif suffix == ".npy":
        ids, matrix = _npy(path)
    elif suffix == ".parquet":
        ids, matrix = _parquet(path)
    else:
        raise PublishError(f"{path}: unknown format {suffix!r}; use one of\n{FORMATS}")
    return VectorSet(ids=ids, matrix=matrix, source=str(path))


def ids_file(path: Path) -> Path:
    """Where the ids of a .npy matrix live: NAME.ids.txt beside NAME.npy."""
    return path.with_name(path.stem + ".ids.txt")


def _npz(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    try:
        # allow_pickle=False: a vector file must never be able to run code.
        with np.load(path, allow_pickle=False) as archive:
            missing = {"ids", "vectors"} - set(archive.files)
            if missing:
                raise PublishError(f"{path}: missing array(s) {', '.join(sorted(missing))}; {FORMATS}")
            raw_ids, matrix = archive["ids"], archive["vectors"]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise PublishError(
            f"{path}: unreadable .npz ({exc}); ids must be a string array, not objects"
        ) from exc
    if raw_ids.ndim != 1 or raw_ids.dtype.kind not in "US":
        raise PublishError(
            f"{path}: `ids` must be a 1-d string array, got {raw_ids.dtype} shape {raw_ids.shape}"
        )
    ids = raw_ids.astype(str).tolist() if raw_ids.dtype.kind == "S" else raw_ids.tolist()
    return tuple(ids), matrix


def _npy(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    id_path = ids_file(path)
    if not id_path.is_file():
        raise PublishError(f"{path}: its ids file {id_path} is missing (one id per line)")
    try:
        matrix = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise PublishError(f"{path}: unreadable .npy ({exc})") from exc
    text = id_path.read_text(encoding="utf-8")
    return tuple(text.splitlines()), matrix


def _parquet(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    try:
        table = pq.read_table(path, columns=["id", "vector"])
    except (pa.ArrowInvalid, KeyError, OSError) as exc:
        raise PublishError(f"{path}: needs columns `id` and `vector` ({exc})") from exc
    id_column, vector_column = table.column("id").combine_chunks(), table.column("vector").combine_chunks()
    if not (pa.types.is_string(id_column.type) or pa.types.is_large_string(id_column.type)):
        raise PublishError(f"{path}: column `id` must be strings, got {id_column.type}")
    if id_column.null_count:
        row = _first_null(id_column)
        raise PublishError(f"{path}: row {row}: id is null")
    if not (
        pa.types.is_list(vector_column.type)
        or pa.types.is_large_list(vector_column.type)
        or pa.types.is_fixed_size_list(vector_column.type)
    ):
        raise PublishError(f"{path}: column `vector` must be a list of floats, got {vector_column.type}")
    if vector_column.null_count:
        raise PublishError(f"{path}: row {_first_null(vector_column)}: vector is null")
    ids = tuple(id_column.to_pylist())
    if not len(vector_column):
        return ids, np.zeros((0, 0), dtype=np.float32)
    lengths = np.asarray(vector_column.value_lengths())
    if (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise PublishError(
            f"{path}: row {row} (id {ids[row]!r}) has {lengths[row]} values, row 0 has {lengths[0]}"
        )
    values = vector_column.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // int(lengths[0])
        raise PublishError(f"{path}: row {row} (id {ids[row]!r}) holds a null value")
    if not pa.types.is_floating(values.type):
        raise PublishError(f"{path}: `vector` values must be floats, got {values.type}")
    return ids, values.to_numpy(zero_copy_only=False).reshape(len(ids), int(lengths[0]))


def _first_null(column: pa.Array) -> int:
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
