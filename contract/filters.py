"""The neutral filter tree over item metadata: what clients send, what the search layer translates.

A tree is a pydantic discriminated union on `op`:

- `{"op": "and" | "or", "children": [...]}` — all / any of the children match;
- `{"op": "not", "child": {...}}` — the child does not match;
- `{"op": "in", "field": F, "values": [...]}` — the field (or, for list fields, any element) is one of values;
- `{"op": "range", "field": F, "gte"|"gt"|"lte"|"lt": number}` — numeric bounds (INTEGER/FLOAT fields);

Numbers must fit the field: INTEGER fields hold 32-bit integers (contract.items.INTEGER_MIN..INTEGER_MAX),
so `in` values and `range` bounds outside that are refused, and FLOAT bounds must be finite doubles.
- `{"op": "exists", "field": F}` — the field holds a value (a non-empty list for list fields).

Use `Filter` as a field type (or `parse_filter`) so the size limits apply: they are checked on the raw input
by an iterative walk before pydantic builds the tree, so a depth-100 tree is a clean validation error.
`matches` is the reference semantics (the search layer's translation is tested against it).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    field_validator,
    model_validator,
)

from contract.items import INTEGER_MAX, INTEGER_MIN, FieldKind, parse_date, schema

MAX_DEPTH: Final = 8
MAX_NODES: Final = 256
MAX_VALUES: Final = 1000
MAX_VALUE_LENGTH: Final = 256

_RANGE_KINDS: Final = frozenset({FieldKind.INTEGER, FieldKind.FLOAT, FieldKind.DATE})
_IN_KINDS: Final = frozenset({FieldKind.KEYWORD, FieldKind.KEYWORDS, FieldKind.INTEGER, FieldKind.BOOLEAN})
_IN_TYPES: Final[dict[FieldKind, type]] = {FieldKind.INTEGER: int, FieldKind.BOOLEAN: bool}

Number = StrictInt | StrictFloat
# A date field's bounds are ISO 8601 strings (contract.items.parse_date), normalised to UTC.
Bound = StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=40)]
Value = Annotated[StrictStr, Field(min_length=1, max_length=MAX_VALUE_LENGTH)] | StrictInt | StrictBool


def _fits(kind: FieldKind, value: int | float) -> bool:
    """Whether a number fits the field's index type (checked without float() on a huge int, which raises)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if kind is FieldKind.INTEGER:
        return INTEGER_MIN <= value <= INTEGER_MAX
    return -sys.float_info.max <= value <= sys.float_info.max


def _range_of(kind: FieldKind) -> str:
    if kind is FieldKind.INTEGER:
        return f"a finite number within {INTEGER_MIN}..{INTEGER_MAX} (the index type is a 32-bit integer)"
    return "a finite number"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _known_field(name: str) -> str:
    allowed = schema().filterable()
    if name not in allowed:
        raise ValueError(f"unknown filter field {name!r}; allowed fields: {', '.join(sorted(allowed))}")
    return name


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AndFilter(_Node):
    """Every child matches."""

    op: Literal["and"] = "and"
    children: tuple[FilterNode, ...] = Field(min_length=1)


class OrFilter(_Node):
    """At least one child matches."""

    op: Literal["or"] = "or"
    children: tuple[FilterNode, ...] = Field(min_length=1)


class NotFilter(_Node):
    """The child does not match."""

    op: Literal["not"] = "not"
    child: FilterNode


class InFilter(_Node):
    """The field's value (any element, for list fields) is one of `values`."""

    op: Literal["in"] = "in"
    field: str
    values: tuple[Value, ...] = Field(min_length=1)

    _field = field_validator("field")(_known_field)

    @model_validator(mode="after")
    def _fits_kind(self) -> InFilter:
        kind = schema().kinds()[self.field]
        if kind not in _IN_KINDS:
            raise ValueError(
                f"'in' does not apply to {kind.value} field {self.field!r}; use 'range' or 'exists'"
            )
        wanted = _IN_TYPES.get(kind, str)
        wrong = [v for v in self.values if type(v) is not wanted]
        if wrong:
            raise ValueError(
                f"values of {kind.value} field {self.field!r} must be {wanted.__name__}s, got {wrong[0]!r}"
            )
        if kind is FieldKind.INTEGER:
            outside = [v for v in self.values if isinstance(v, int) and not _fits(kind, v)]
            if outside:
                raise ValueError(
                    f"values of {self.field!r} must each be {_range_of(kind)}, got {_shown(outside[0])}"
                )
        return self


class RangeFilter(_Node):
    """Numeric bounds on an INTEGER or FLOAT field; at least one bound."""

    op: Literal["range"] = "range"
    field: str
    gte: Bound | None = None
    gt: Bound | None = None
    lte: Bound | None = None
    lt: Bound | None = None

    _field = field_validator("field")(_known_field)

    @model_validator(mode="after")
    def _fits_kind(self) -> RangeFilter:
        kind = schema().kinds()[self.field]
        if kind not in _RANGE_KINDS:
            raise ValueError(
                f"'range' applies only to integer/float/date fields, not {kind.value} field {self.field!r}"
            )
        bounds = self.bounds()
        if not bounds:
            raise ValueError(f"range on {self.field!r} needs at least one of gte, gt, lte, lt")
        for name, value in bounds.items():
            if kind is FieldKind.DATE:
                try:
                    # Normalised in place (frozen model): OpenSearch and `matches` compare UTC strings.
                    object.__setattr__(self, name, parse_date(value))
                except ValueError as exc:
                    raise ValueError(f"range bound {name} of date field {self.field!r} {exc}") from None
                continue
            if isinstance(value, str):
                raise ValueError(
                    f"range bound {name} of {self.field!r} must be {_range_of(kind)}, got {value!r}"
                )
            if not _fits(kind, value):
                raise ValueError(
                    f"range bound {name} of {self.field!r} must be {_range_of(kind)}, got {_shown(value)}"
                )
        if self.gte is not None and self.gt is not None:
            raise ValueError(f"range on {self.field!r}: give gte or gt, not both")
        if self.lte is not None and self.lt is not None:
            raise ValueError(f"range on {self.field!r}: give lte or lt, not both")
        return self

    def bounds(self) -> dict[str, int | float | str]:
        """The bounds that are set, by name."""
        return {
            name: value
            for name, value in (("gte", self.gte), ("gt", self.gt), ("lte", self.lte), ("lt", self.lt))
            if value is not None
        }


class ExistsFilter(_Node):
    """The field holds a value (non-empty, for list fields)."""

    op: Literal["exists"] = "exists"
    field: str

    _field = field_validator("field")(_known_field)


FilterNode = Annotated[
    AndFilter | OrFilter | NotFilter | InFilter | RangeFilter | ExistsFilter,
    Field(discriminator="op"),
]

for _model in (AndFilter, OrFilter, NotFilter):
    _model.model_rebuild()


def _children(node: object) -> list[object]:
    """Children of a raw (dict) or built node, for the size walk; anything malformed has none."""
    if isinstance(node, Mapping):
        op, kids, child = node.get("op"), node.get("children"), node.get("child")
    elif isinstance(node, _Node):
        op, kids, child = (
            getattr(node, "op", None),
            getattr(node, "children", None),
            getattr(node, "child", None),
        )
    else:
        return []
    if op in ("and", "or") and isinstance(kids, list | tuple):
        return list(kids)
    if op == "not" and child is not None:
        return [child]
    return []


def _value_count(node: object) -> int:
    values = node.get("values") if isinstance(node, Mapping) else getattr(node, "values", None)
    return len(values) if isinstance(values, list | tuple) else 0


def check_limits(raw: Any) -> Any:
    """Refuse a tree deeper than MAX_DEPTH or larger than MAX_NODES / MAX_VALUES (walked iteratively)."""
    stack: list[tuple[object, int]] = [(raw, 1)]
    nodes = values = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"filter tree is deeper than the limit of {MAX_DEPTH} levels (MAX_DEPTH)")
        nodes += 1
        if nodes > MAX_NODES:
            raise ValueError(f"filter tree has more than the limit of {MAX_NODES} nodes (MAX_NODES)")
        values += _value_count(node)
        if values > MAX_VALUES:
            raise ValueError(
                f"filter tree has more than the limit of {MAX_VALUES} values in total (MAX_VALUES)"
            )
        stack.extend((child, depth + 1) for child in _children(node))
    return raw


Filter = Annotated[FilterNode, BeforeValidator(check_limits)]
"""A size-limited filter tree: the type to use for request fields."""

_ADAPTER: TypeAdapter[FilterNode] = TypeAdapter(Filter)


def filter_schema() -> dict[str, Any]:
    """The JSON Schema of a filter tree (with its own `$defs`)."""
    schema: dict[str, Any] = _ADAPTER.json_schema()
    return schema


def parse_filter(data: object) -> FilterNode:
    """Validate raw JSON-like data into a filter tree (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_python(data)


def filter_to_json(node: FilterNode) -> dict[str, Any]:
    """The tree as plain JSON data (round-trips through `parse_filter`)."""
    data: dict[str, Any] = _ADAPTER.dump_python(node, mode="json", exclude_none=True)
    return data


def fields_of(node: FilterNode) -> frozenset[str]:
    """Every metadata field the tree names."""
    found: set[str] = set()
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        name = getattr(current, "field", None)
        if isinstance(name, str):
            found.add(name)
        stack.extend(_children(current))
    return frozenset(found)


def _present(value: object) -> bool:
    return value is not None and value != [] and value != ()


def _as_list(value: object) -> list[object]:
    if not _present(value):
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def matches(node: FilterNode, doc: Mapping[str, object]) -> bool:
    """Reference semantics: whether a metadata document satisfies the tree (missing fields never match)."""
    if isinstance(node, AndFilter):
        return all(matches(child, doc) for child in node.children)
    if isinstance(node, OrFilter):
        return any(matches(child, doc) for child in node.children)
    if isinstance(node, NotFilter):
        return not matches(node.child, doc)
    if isinstance(node, ExistsFilter):
        return _present(doc.get(node.field))
    if isinstance(node, InFilter):
        wanted = set(node.values)
        return any(v in wanted for v in _as_list(doc.get(node.field)))
    return any(_in_range(node, v) for v in _as_list(doc.get(node.field)))


def _in_range(node: RangeFilter, value: object) -> bool:
    if isinstance(value, str):  # a date: UTC ISO strings of one format order as the moments do
        bounds = node.bounds()
        if not all(isinstance(b, str) for b in bounds.values()):
            return False
        return all(_compare(op, value, bound) for op, bound in bounds.items())
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return all(_compare(op, value, bound) for op, bound in node.bounds().items())


def _compare(op: str, value: Any, bound: Any) -> bool:
    try:
        return bool(_OPS[op](value, bound))
    except TypeError:  # a number against a date bound, or the reverse: no match
        return False


_OPS: Final = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


MAX_PARTITIONS: Final = 64

Partitions = Annotated[
    list[Annotated[StrictStr, Field(min_length=1, max_length=MAX_VALUE_LENGTH)]],
    Field(
        min_length=1,
        max_length=MAX_PARTITIONS,
        description="Answer from these partitions only (values of the item schema's partition field).",
    ),
]
"""A request's partitions: the type to use for request fields."""


def scoped(node: FilterNode | None, partitions: list[str] | None) -> FilterNode | None:
    """The filter tree restricted to `partitions` (an `in` on the schema's partition field, AND the tree).

    ValueError when the schema declares no partition field.
    """
    if partitions is None:
        return node
    field = schema().partition
    if field is None:
        raise ValueError(f"the item schema {schema().name!r} declares no partition field")
    scope = InFilter(field=field, values=tuple(dict.fromkeys(partitions)))
    if node is None:
        return scope
    return AndFilter(children=(scope, node))
