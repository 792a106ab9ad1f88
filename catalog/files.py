"""Catalog files read as items: CSV, JSON lines and Parquet (CSV and JSON lines also gzipped).

Reading streams: a file of a million items is never held in memory whole, and a line longer than an item
can be is refused after reading at most LINE_LIMIT of it. The readers only shape each item (CSV cells get
their field's type); `validated` runs the schema's one validation on every format's items.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from contract.items import ITEM_ID, MAX_ITEM_BYTES, FieldKind, ItemError, ItemSchema
from contract.json_text import LoneSurrogateError, RepeatedKeyError, strict_loads

FORMATS: Final = ("csv", "jsonl", "parquet")
_SUFFIXES: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_GZIP_MAGIC: Final = b"\x1f\x8b"
# The longest CSV record or JSON line read. A valid item's JSON is at most MAX_ITEM_BYTES, but the file may
# spell it longer: CSV doubles quotes, and JSON's \uXXXX escapes take up to 3 times a character's UTF-8.
LINE_LIMIT: Final = 3 * MAX_ITEM_BYTES + (64 << 10)
KEYWORDS_SEPARATOR: Final = "|"
PARQUET_BATCH_ROWS: Final = 512
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}


class CatalogFileError(ValueError):
    """A catalog file that cannot be read as items; the message names the file, the line or row, the
    item and the field where it can."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item as the file holds it (not yet validated), and where: "items.csv line 12"."""

    where: str
    doc: dict[str, Any]


def file_format(path: Path, format: str | None = None) -> str:
    """The file's format (csv, jsonl or parquet): `format` when given, else from the suffix."""
    if format is not None:
        chosen = "jsonl" if format == "ndjson" else format
        if chosen not in FORMATS:
            raise CatalogFileError(f"{path}: unknown format {format!r}; supported: {', '.join(FORMATS)}")
        return chosen
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
        known = _SUFFIXES.get(suffixes[-1]) if suffixes else None
        if known == "parquet":
            known = None  # Parquet compresses inside the file
    else:
        known = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if known is None:
        raise CatalogFileError(
            f"{path}: cannot tell the format from the name; supported: .csv, .jsonl or .ndjson "
            f"(either also .gz), .parquet"
        )
    return known


def read_items(path: Path, item_schema: ItemSchema, *, format: str | None = None) -> Iterator[RawItem]:
    """The file's items in order, read as they are consumed (close the iterator to stop early).

    An unknown format raises here; everything else (a missing file too) when the items are read.
    """
    readers: dict[str, Callable[[Path, ItemSchema], Iterator[RawItem]]] = {
        "csv": _csv_items,
        "jsonl": _jsonl_items,
        "parquet": _parquet_items,
    }
    return readers[file_format(path, format)](path, item_schema)


def validated(items: Iterable[RawItem], item_schema: ItemSchema) -> Iterator[dict[str, Any]]:
    """Each item as the schema stores it; CatalogFileError "<where>: <problem>" at the first refused."""
    for raw in items:
        try:
            yield item_schema.validate_item(raw.doc)
        except ItemError as exc:
            raise CatalogFileError(f"{raw.where}: {exc}") from exc


# --- opening ----------------------------------------------------------------------------------------------


def _gzipped(path: Path) -> bool:
    """Whether the file is gzip, told by its first bytes rather than its name."""
    try:
        with path.open("rb") as sniff:
            return sniff.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _open_text(path: Path) -> IO[str]:
    """The file as UTF-8 text with its newlines kept (as csv wants), gunzipped when gzip."""
    # utf-8-sig: spreadsheets often start a CSV with a byte order mark.
    gzipped = _gzipped(path)
    try:
        if gzipped:
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _open_bytes(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when gzip."""
    gzipped = _gzipped(path)
    try:
        return gzip.GzipFile(path, "rb") if gzipped else path.open("rb")
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


_READ_ERRORS: Final = (OSError, EOFError, zlib.error)  # a truncated or corrupt gzip stream among them


# --- CSV --------------------------------------------------------------------------------------------------


class _CsvLines:
    """The file's lines for csv.reader, each record at most LINE_LIMIT characters, counting lines."""

    def __init__(self, stream: IO[str], path: Path) -> None:
        self._stream, self._path = stream, path
        self.lines = 0  # physical lines read so far
        self.record_start = 1
        self._record_chars = 0

    def next_record(self) -> None:
        """The reader finished a record: the next one starts on the next line."""
        self.record_start, self._record_chars = self.lines + 1, 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        try:
            text = self._stream.readline(LINE_LIMIT + 1)
        except UnicodeDecodeError as exc:
            raise CatalogFileError(f"{self._path} line {self.lines + 1}: not UTF-8 ({exc.reason})") from exc
        except _READ_ERRORS as exc:
            raise CatalogFileError(f"{self._path} line {self.lines + 1}: cannot read: {exc}") from exc
        if not text:
            raise StopIteration
        self.lines += 1
        self._record_chars += len(text)
        if self._record_chars > LINE_LIMIT:
            raise CatalogFileError(
                f"{self._path} line {self.record_start}: the record is longer than {LINE_LIMIT} characters "
                f"(an item is at most {MAX_ITEM_BYTES} bytes)"
            )
        return text


def _csv_items(path: Path, item_schema: ItemSchema) -> Iterator[RawItem]:
    # The limit is the csv module's, process-wide: raise it (never lower it) so a field as long as an item
    # can be reads; _CsvLines bounds each record anyway.
    csv.field_size_limit(max(csv.field_size_limit(), LINE_LIMIT))
    with _open_text(path) as text:
        lines = _CsvLines(text, path)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise CatalogFileError(f"{path} line {lines.record_start}: not valid CSV ({exc})") from exc
        if header is None:
            raise CatalogFileError(f"{path}: empty; a CSV catalog starts with a header row naming its fields")
        kinds = _csv_columns(path, [name.strip() for name in header], item_schema)
        names = list(kinds)
        id_column = names.index(ITEM_ID)
        while True:
            lines.next_record()
            try:
                cells = next(reader, None)
            except csv.Error as exc:
                raise CatalogFileError(f"{path} line {lines.record_start}: not valid CSV ({exc})") from exc
            if cells is None:
                return
            if not cells:
                continue  # a blank line
            where = f"{path} line {lines.record_start}"
            if len(cells) != len(names):
                raise CatalogFileError(
                    f"{where}: {len(cells)} cells, but the header names {len(names)} columns"
                )
            ident = cells[id_column]
            item_id = (ident if len(ident) <= 64 else f"{ident[:61]}...") or None  # as messages show it
            doc: dict[str, Any] = {}
            for name, cell in zip(names, cells, strict=True):
                try:
                    doc[name] = _cell(cell, kinds[name])
                except ValueError as exc:
                    error = ItemError(item_id, name, str(exc))  # the cause, for callers wanting the field
                    raise CatalogFileError(f"{where}: {error}") from error
            yield RawItem(where, doc)


def _csv_columns(path: Path, header: list[str], item_schema: ItemSchema) -> dict[str, FieldKind]:
    """Each column's field kind, in the header's order; CatalogFileError for a column the schema lacks."""
    known = item_schema.kinds()
    kinds: dict[str, FieldKind] = {}
    for name in header:
        if name not in known:
            raise CatalogFileError(
                f"{path} line 1: unknown column {_shown(name)}; the schema {item_schema.name!r} has "
                f"{', '.join(known)}"
            )
        if name in kinds:
            raise CatalogFileError(f"{path} line 1: the column {name!r} appears twice")
        kinds[name] = known[name]
    if ITEM_ID not in kinds:
        raise CatalogFileError(f"{path} line 1: no {ITEM_ID} column (the header names {', '.join(header)})")
    return kinds


def _cell(cell: str, kind: FieldKind) -> Any:
    """A CSV cell as its field's value: None when empty; ValueError saying what it must be."""
    if cell == "":
        return None
    if kind in (FieldKind.KEYWORD, FieldKind.TEXT):
        return cell
    if kind is FieldKind.KEYWORDS:
        return [part.strip() for part in cell.split(KEYWORDS_SEPARATOR) if part.strip()]
    value = cell.strip()
    if kind is FieldKind.INTEGER:
        if not _INTEGER.fullmatch(value) or len(value) > 20:
            raise ValueError(f"must be an integer, got {_shown(cell)}")
        return int(value)
    if kind is FieldKind.FLOAT:
        if not _FLOAT.fullmatch(value) or len(value) > 400:
            raise ValueError(f"must be a number, got {_shown(cell)}")
        return float(value)
    if kind is FieldKind.BOOLEAN:
        flag = _BOOLEANS.get(value.lower())
        if flag is None:
            raise ValueError(f"must be true or false (or 1 or 0), got {_shown(cell)}")
        return flag
    return value  # a date: the schema's validation parses it


# --- JSON lines -------------------------------------------------------------------------------------------


def _jsonl_items(path: Path, item_schema: ItemSchema) -> Iterator[RawItem]:
    with _open_bytes(path) as stream:
        number = 0
        while True:
            number += 1
            where = f"{path} line {number}"
            try:
                line = stream.readline(LINE_LIMIT + 2)  # the limit, then \r\n
            except _READ_ERRORS as exc:
                raise CatalogFileError(f"{where}: cannot read: {exc}") from exc
            if not line:
                return
            content = line.rstrip(b"\r\n")
            if len(content) > LINE_LIMIT:
                raise CatalogFileError(
                    f"{where}: the line is longer than {LINE_LIMIT} bytes "
                    f"(an item is at most {MAX_ITEM_BYTES} bytes)"
                )
            if number == 1:
                content = content.removeprefix(b"\xef\xbb\xbf")  # a byte order mark some editors write
            if not content.strip():
                continue
            yield RawItem(where, _json_object(where, content))


def _json_object(where: str, content: bytes) -> dict[str, Any]:
    """One line's JSON object; CatalogFileError naming the line for anything else."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        value = strict_loads(text)
    except RepeatedKeyError as exc:
        raise CatalogFileError(
            f"{where}: the key {_shown(exc.key)} appears more than once in one JSON object"
        ) from exc
    except LoneSurrogateError as exc:
        raise CatalogFileError(f"{where}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise CatalogFileError(f"{where}: not valid JSON (nested too deep)") from exc
    except ValueError as exc:  # an integer literal longer than Python converts (4,300 digits)
        raise CatalogFileError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise CatalogFileError(f"{where}: a line must hold a JSON object, got {type(value).__name__}")
    return value


# --- Parquet ----------------------------------------------------------------------------------------------


def _parquet_items(path: Path, item_schema: ItemSchema) -> Iterator[RawItem]:
    try:
        with pq.ParquetFile(path) as parquet:
            names = list(parquet.schema_arrow.names)
            known = item_schema.kinds()
            for name in names:
                if name not in known:
                    raise CatalogFileError(
                        f"{path}: unknown column {_shown(name)}; the schema {item_schema.name!r} has "
                        f"{', '.join(known)}"
                    )
            if ITEM_ID not in names:
                raise CatalogFileError(f"{path}: no {ITEM_ID} column (the file has {', '.join(names)})")
            row = 0
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                try:
                    rows = batch.to_pylist()
                except (pa.ArrowException, ValueError, OverflowError) as exc:
                    raise CatalogFileError(
                        f"{path} rows {row + 1}-{row + batch.num_rows}: cannot convert: {exc}"
                    ) from exc
                for doc in rows:
                    row += 1
                    yield RawItem(f"{path} row {row}", {k: _parquet_value(v) for k, v in doc.items()})
    except (pa.ArrowException, OSError) as exc:
        raise CatalogFileError(f"cannot read {path} as Parquet: {exc}") from exc


def _parquet_value(value: Any) -> Any:
    """Arrow's Python value as JSON would hold it: dates and times as ISO 8601 strings."""
    if isinstance(value, datetime):
        # A timestamp without a time zone is taken as UTC (what pandas and Spark write by default).
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
