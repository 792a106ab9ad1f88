"""The holdout file: user_id,book_id CSV rows a model is asked to find, gzipped or not (by magic bytes).

Bytes in, bytes out: training writes the file, training and serving read it, each doing its own file I/O.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from typing import NamedTuple

COLUMNS = ("user_id", "book_id")
_GZIP_MAGIC = b"\x1f\x8b"


class HoldoutError(ValueError):
    """A holdout file that cannot be read as user_id,book_id pairs."""


class HeldOut(NamedTuple):
    """One held-out pair, and the line it is on (for messages about it)."""

    line: int
    user_id: str
    book_id: str


def parse_holdout(raw: bytes, source: str) -> list[HeldOut]:
    """The rows of a holdout file's bytes (blank lines skipped); HoldoutError names `source` and the fault."""
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is no part of the first column's name.
        text = (gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise HoldoutError(f"holdout {source}: not UTF-8 CSV or valid gzip ({exc})") from exc
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if not set(COLUMNS) <= set(header):
        shown = ",".join(header) or "(empty)"
        raise HoldoutError(f"holdout {source}: needs columns {','.join(COLUMNS)}; header is {shown}")
    user_at, book_at = header.index("user_id"), header.index("book_id")
    rows: list[HeldOut] = []
    for fields in reader:
        if not fields:
            continue
        user = fields[user_at].strip() if user_at < len(fields) else ""
        book = fields[book_at].strip() if book_at < len(fields) else ""
        if not user or not book:
            raise HoldoutError(f"holdout {source} line {reader.line_num}: needs a user_id and a book_id")
        rows.append(HeldOut(reader.line_num, user, book))
    if not rows:
        raise HoldoutError(f"holdout {source}: no rows")
    return rows


def render_holdout(pairs: Iterable[tuple[object, object]], gzipped: bool) -> bytes:
    """A holdout file's bytes for (user_id, book_id) pairs, gzipped if asked."""
    text = ",".join(COLUMNS) + "\n" + "".join(f"{user},{book}\n" for user, book in pairs)
    return gzip.compress(text.encode()) if gzipped else text.encode()
