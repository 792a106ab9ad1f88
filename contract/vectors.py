"""The byte encoding of vectors in Redis and on the wire: little-endian float32, row-major."""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt

DTYPE = np.dtype("<f4")
Matrix = npt.NDArray[np.float32]


def encode(vector: npt.ArrayLike) -> bytes:
    """One vector (or a row-major matrix) as little-endian float32 bytes."""
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def decode(data: bytes, dim: int) -> Matrix:
    """Bytes back to a (n, dim) float32 matrix; refuses a length that is not a whole number of rows."""
    if dim <= 0 or len(data) % (4 * dim):
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 vectors of dim {dim}")
    return np.frombuffer(data, dtype=DTYPE).reshape(-1, dim)


def decode_one(data: bytes, dim: int) -> Matrix:
    """Bytes of exactly one vector to a (dim,) float32 array."""
    if len(data) != 4 * dim:
        raise ValueError(f"{len(data)} bytes is not one float32 vector of dim {dim}")
    return np.frombuffer(data, dtype=DTYPE)


def to_base64(matrix: Matrix) -> str:
    """A matrix as base64 of its float32 bytes (the compact JSON encoding of vector batches)."""
    return base64.b64encode(encode(matrix)).decode("ascii")


def from_base64(text: str, dim: int) -> Matrix:
    """Inverse of `to_base64`."""
    return decode(base64.b64decode(text, validate=True), dim)
