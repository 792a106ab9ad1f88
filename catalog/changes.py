"""Catalog change events: how a write is recorded on the change stream, and read back by its consumers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson


class ChangeKind(StrEnum):
    """What happened to an item."""

    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class CatalogChange:
    """One stream entry: an upsert carries the whole item as stored, a delete only its id."""

    entry_id: str
    kind: ChangeKind
    item_id: str
    doc: dict[str, Any] | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode(entry_id: Any, fields: Mapping[Any, Any]) -> CatalogChange:
    """A stream entry as a change (the fields the store's scripts write: kind, item_id, item)."""
    data = {_text(k): v for k, v in fields.items()}
    kind = ChangeKind(_text(data["kind"]))
    # orjson, on the raw value: an incremental cycle decodes up to live_max_changes items (json: ~10 µs each).
    doc = orjson.loads(data["item"]) if kind is ChangeKind.UPSERT else None
    return CatalogChange(_text(entry_id), kind, _text(data["item_id"]), doc)
