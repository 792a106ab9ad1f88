"""The declared item schema: a deployment's item fields, read from one YAML file (LOCKSTEP_CATALOG_SCHEMA).

The index template's mapping, the filter validator (fields and value types), the fallback scorer's content
and popularity fields, the explorer's columns and the catalog's item validation all come from it. Every
process loads the same file at start; `schema()` is the one in effect.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.wire import ENTITY_ID


class FieldKind(StrEnum):
    """What kind of value a metadata field holds (decides the mapping and which filters apply)."""

    KEYWORD = "keyword"  # an exact string; `in`, `exists`
    KEYWORDS = "keywords"  # a list of exact strings; `in` matches any element; `exists`
    INTEGER = "integer"  # 32-bit signed; `range`, `in`, `exists`
    FLOAT = "float"  # finite double; `range`, `exists`
    BOOLEAN = "boolean"  # `in` with true/false, `exists`
    DATE = "date"  # ISO 8601 date or date-time, kept in UTC; `range` with ISO strings, `exists`
    TEXT = "text"  # full text, returned but not filterable


ITEM_ID: Final = "item_id"
# Names a recommended item already carries on the wire (serving's RecommendedItem): no field may take them.
RESERVED: Final = frozenset({ITEM_ID, "score", "scorer", "version", "explain", "partition"})

# What the index types hold: a value outside them would make OpenSearch refuse the whole query or document.
INTEGER_MIN: Final = -(2**31)
INTEGER_MAX: Final = 2**31 - 1
MAX_FIELDS: Final = 64
DEFAULT_MAX_LENGTH: Final[dict[FieldKind, int]] = {
    FieldKind.KEYWORD: 256,
    FieldKind.KEYWORDS: 256,  # per element
    FieldKind.TEXT: 65_536,
}
MAX_LIST_VALUES: Final = 100  # elements of a keywords field
MAX_ITEM_BYTES: Final = 1 << 20  # an item's JSON, all fields together

_FIELD_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SCHEMA_NAME: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_NUMERIC: Final = frozenset({FieldKind.INTEGER, FieldKind.FLOAT})
_TERMS: Final = frozenset({FieldKind.KEYWORD, FieldKind.KEYWORDS})


class SchemaError(ValueError):
    """A schema file that cannot be read or does not validate (the message names the file and the field)."""


class ItemError(ValueError):
    """An item the schema refuses; names the item and the field."""

    def __init__(self, item_id: str | None, field: str, problem: str) -> None:
        self.item_id, self.field, self.problem = item_id, field, problem
        who = f"item {item_id!r}" if item_id is not None else "item"
        super().__init__(f"{who}: field {field!r}: {problem}")


class FieldSpec(BaseModel):
    """One item field: its kind, whether filters may name it, whether every item must have it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: FieldKind
    filterable: bool | None = Field(default=None, description="Default: every kind but text.")
    required: bool = False
    max_length: int | None = Field(
        default=None, ge=1, le=1 << 20, description="Characters per string (keyword, keywords element, text)."
    )
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type is FieldKind.TEXT and self.filterable:
            raise ValueError("a text field cannot be filterable (use keyword for exact matches)")
        if self.max_length is not None and self.type not in DEFAULT_MAX_LENGTH:
            raise ValueError(
                f"max_length applies to keyword, keywords and text fields, not {self.type.value}"
            )
        return self

    @property
    def can_filter(self) -> bool:
        """Whether filters may name the field."""
        return self.filterable if self.filterable is not None else self.type is not FieldKind.TEXT

    @property
    def length_limit(self) -> int | None:
        """The most characters a string of this field may hold."""
        return self.max_length or DEFAULT_MAX_LENGTH.get(self.type)


class Quality(BaseModel):
    """A numeric field whose value (0..max) lifts an item in the popularity prior."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    max: float = Field(gt=0, allow_inf_nan=False)


class ItemSchema(BaseModel):
    """A catalog's item fields and the roles some of them play."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The catalog's name, e.g. goodbooks.")
    fields: dict[str, FieldSpec] = Field(min_length=1)
    popularity: str | None = Field(default=None, description="Numeric field: the popular list's order.")
    quality: Quality | None = None
    content: tuple[str, ...] = Field(
        default=(), description="Keyword fields the fallback scorer matches against a user's recent items."
    )
    partition: str | None = Field(default=None, description="Keyword field splitting the catalog.")
    display: tuple[str, ...] | None = Field(default=None, description="The explorer's columns (default all).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SCHEMA_NAME.fullmatch(value):
            raise ValueError(f"name {value!r} must match {_SCHEMA_NAME.pattern}")
        return value

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        if len(value) > MAX_FIELDS:
            raise ValueError(f"{len(value)} fields, more than the limit of {MAX_FIELDS}")
        for name in value:
            if not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"field name {name!r} must match {_FIELD_NAME.pattern}")
            if name in RESERVED:
                raise ValueError(f"field name {name!r} is reserved ({', '.join(sorted(RESERVED))})")
        return value

    @model_validator(mode="after")
    def _roles(self) -> ItemSchema:
        def kind_of(role: str, name: str, allowed: frozenset[FieldKind]) -> None:
            spec = self.fields.get(name)
            if spec is None:
                raise ValueError(f"{role} names {name!r}, which is not a field")
            if spec.type not in allowed:
                kinds = "/".join(sorted(k.value for k in allowed))
                raise ValueError(f"{role} field {name!r} must be {kinds}, not {spec.type.value}")

        if self.popularity is not None:
            kind_of("popularity", self.popularity, _NUMERIC)
        if self.quality is not None:
            kind_of("quality", self.quality.field, _NUMERIC)
        for name in self.content:
            kind_of("content", name, _TERMS)
        if self.partition is not None:
            kind_of("partition", self.partition, frozenset({FieldKind.KEYWORD}))
            spec = self.fields[self.partition]
            if not spec.required or not spec.can_filter:
                raise ValueError(f"partition field {self.partition!r} must be required and filterable")
        for name in self.display or ():
            if name not in self.fields:
                raise ValueError(f"display names {name!r}, which is not a field")
        return self

    # --- what the rest of the system reads ---------------------------------------------------------------

    def kinds(self) -> Mapping[str, FieldKind]:
        """Every document field with its kind, item_id first (read-only)."""
        return self._kinds

    def filterable(self) -> frozenset[str]:
        """The fields filters may name (item_id among them)."""
        return self._filterable

    # Read per query and per filter node: worked out once per schema (it is frozen).
    @cached_property
    def _kinds(self) -> Mapping[str, FieldKind]:
        return MappingProxyType(
            {ITEM_ID: FieldKind.KEYWORD, **{name: spec.type for name, spec in self.fields.items()}}
        )

    @cached_property
    def _filterable(self) -> frozenset[str]:
        return frozenset({ITEM_ID, *(name for name, spec in self.fields.items() if spec.can_filter)})

    def columns(self) -> tuple[str, ...]:
        """The fields a person browsing results sees, in order."""
        return self.display if self.display is not None else tuple(self.fields)

    def json_schema(self, *, partial: bool = False) -> dict[str, Any]:
        """The JSON Schema of an item (OpenAPI request bodies); `partial`: a patch (nulls remove fields).

        What JSON Schema cannot state is checked by `validate_item` only: calendar-valid dates, 1 MiB.
        """
        properties: dict[str, Any] = {
            ITEM_ID: {"type": "string", "maxLength": 128, "pattern": ENTITY_ID.pattern}
        }
        for name, spec in self.fields.items():
            value = _JSON_TYPES[spec.type](spec)
            properties[name] = value if spec.required else {"anyOf": [value, {"type": "null"}]}
        required = [] if partial else [n for n, spec in self.fields.items() if spec.required]
        return {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            **({"required": required} if required else {}),
        }

    def fingerprint(self) -> str:
        """Identifies what the index mapping and stored items depend on (fields and partition)."""
        canon = {
            "fields": {n: s.model_dump(mode="json", exclude={"description"}) for n, s in self.fields.items()},
            "partition": self.partition,
        }
        return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]

    def validate_item(self, raw: object, *, partial: bool = False) -> dict[str, Any]:
        """The item as stored: known fields only, values checked and normalised (dates in UTC).

        `partial` (a metadata patch): fields may be missing, and null removes a field. Raises ItemError
        naming the item and the first field at fault.
        """
        if not isinstance(raw, Mapping):
            raise ItemError(None, ITEM_ID, f"an item must be a JSON object, got {type(raw).__name__}")
        item_id = raw.get(ITEM_ID)
        shown = item_id if isinstance(item_id, str) else None
        if not isinstance(item_id, str) or not ENTITY_ID.fullmatch(item_id):
            raise ItemError(shown, ITEM_ID, f"must be a string matching {ENTITY_ID.pattern}")
        out: dict[str, Any] = {ITEM_ID: item_id}
        for name, value in raw.items():
            if name == ITEM_ID:
                continue
            spec = self.fields.get(name) if isinstance(name, str) else None
            if spec is None:
                raise ItemError(
                    item_id,
                    str(name),
                    f"unknown field; the schema {self.name!r} has {', '.join(self.fields)}",
                )
            if value is None:
                if spec.required:
                    raise ItemError(item_id, name, "is required and cannot be null")
                out[name] = None
                continue
            out[name] = _checked(item_id, name, spec, value)
        if not partial:
            missing = [n for n, spec in self.fields.items() if spec.required and out.get(n) is None]
            if missing:
                raise ItemError(item_id, missing[0], "is required")
        size = len(json.dumps(out, ensure_ascii=False).encode())
        if size > MAX_ITEM_BYTES:
            raise ItemError(item_id, ITEM_ID, f"the item is {size} bytes, more than {MAX_ITEM_BYTES}")
        return out


def _string(spec: FieldSpec) -> dict[str, Any]:
    return {"type": "string", "maxLength": spec.length_limit}


_JSON_TYPES: Final[dict[FieldKind, Any]] = {
    FieldKind.KEYWORD: _string,
    FieldKind.TEXT: _string,
    FieldKind.KEYWORDS: lambda spec: {"type": "array", "items": _string(spec), "maxItems": MAX_LIST_VALUES},
    FieldKind.INTEGER: lambda _spec: {"type": "integer", "minimum": INTEGER_MIN, "maximum": INTEGER_MAX},
    FieldKind.FLOAT: lambda _spec: {"type": "number"},
    FieldKind.BOOLEAN: lambda _spec: {"type": "boolean"},
    FieldKind.DATE: lambda _spec: {
        "type": "string",
        "description": "ISO 8601: a date (2026-12-03) or a date-time with an offset (2026-12-03T10:00:00Z).",
        "anyOf": [{"format": "date"}, {"format": "date-time"}],
    },
}


def _checked(item_id: str, name: str, spec: FieldSpec, value: Any) -> Any:
    """One field's value, normalised, or ItemError."""
    kind = spec.type

    def bad(problem: str) -> ItemError:
        return ItemError(item_id, name, problem)

    def text(v: Any) -> str:
        if not isinstance(v, str):
            raise bad(f"must be a string, got {_shown(v)}")
        limit = spec.length_limit
        if limit is not None and len(v) > limit:
            raise bad(f"holds {len(v)} characters, more than its limit of {limit}")
        return v

    if kind is FieldKind.KEYWORDS:
        if not isinstance(value, list | tuple):
            raise bad(f"must be a list of strings, got {_shown(value)}")
        if len(value) > MAX_LIST_VALUES:
            raise bad(f"holds {len(value)} values, more than the limit of {MAX_LIST_VALUES}")
        return [text(v) for v in value]
    if kind in (FieldKind.KEYWORD, FieldKind.TEXT):
        return text(value)
    if kind is FieldKind.BOOLEAN:
        if not isinstance(value, bool):
            raise bad(f"must be true or false, got {_shown(value)}")
        return value
    if kind is FieldKind.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"must be an integer, got {_shown(value)}")
        if not INTEGER_MIN <= value <= INTEGER_MAX:
            raise bad(f"must be within {INTEGER_MIN}..{INTEGER_MAX}, got {_shown(value)}")
        return value
    if kind is FieldKind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"must be a number, got {_shown(value)}")
        try:
            number = float(value)  # an int beyond a double's range raises OverflowError
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise bad(f"must be a finite number, got {_shown(value)}")
        return number
    try:
        return parse_date(value)
    except ValueError as exc:
        raise bad(str(exc)) from None


def parse_date(value: object) -> str:
    """An ISO 8601 date ('2026-12-03') or date-time with an offset, as UTC 'YYYY-MM-DDTHH:MM:SSZ'."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise ValueError(f"must be an ISO 8601 date or date-time string, got {_shown(value)}")
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("no offset")
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 date (2026-12-03) or date-time with an offset "
            f"(2026-12-03T10:00:00Z), got {_shown(value)}"
        ) from None
    if not 1 <= moment.year <= 9999:
        raise ValueError(f"must be within the years 1..9999, got {_shown(value)}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def load_schema(path: Path) -> ItemSchema:
    """Read and validate a schema file (SchemaError names the file and what is wrong)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchemaError(f"cannot read the item schema {path}: {exc}") from exc
    try:
        return ItemSchema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise SchemaError(f"the item schema {path} is not valid: {problems}") from exc


@cache
def _loaded(path: Path) -> ItemSchema:
    return load_schema(path)


_active: ItemSchema | None = None


def use_schema(value: ItemSchema | Path) -> ItemSchema:
    """Make a schema (or the file's) the one in effect for this process; returns it."""
    global _active
    _active = value if isinstance(value, ItemSchema) else _loaded(value.resolve())
    return _active


@contextmanager
def using_schema(value: ItemSchema | Path) -> Iterator[ItemSchema]:
    """A schema in effect for the block (tests, benchmarks); the one before it again afterwards."""
    global _active
    before = _active
    try:
        yield use_schema(value)
    finally:
        _active = before


def schema() -> ItemSchema:
    """The schema in effect: the one `use_schema` set, else LOCKSTEP_CATALOG_SCHEMA's, else goodbooks'."""
    if _active is None:
        from contract.settings import DataSettings

        return use_schema(DataSettings().catalog_schema)
    return _active
