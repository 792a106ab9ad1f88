"""The items the indexer writes: documents of the item schema in effect (contract.items)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract.items import ITEM_ID, schema


@dataclass(frozen=True)
class Item:
    """One catalog item: its id and its metadata fields, as the item schema validated them."""

    item_id: str
    fields: Mapping[str, Any]

    def document(self) -> dict[str, Any]:
        """The metadata part of the item's search document (vector slots are added by the indexer)."""
        return {ITEM_ID: self.item_id, **self.fields}

    def replacement(self) -> dict[str, Any]:
        """The document as a partial update replacing the item: a schema field it lacks is set to null.

        A partial update keeps the fields it does not name (the vector slots must stay), so a value the
        item no longer has would otherwise stay searchable and filterable.
        """
        return {**dict.fromkeys(schema().fields), **self.document()}

    def replaced(self, **fields: Any) -> Item:
        """The item with some fields changed (checked against the schema)."""
        return Item.from_document({**self.document(), **fields})

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Item:
        """An item document checked against the schema (contract.items.ItemError naming the field)."""
        checked = schema().validate_item(doc)
        return cls(checked.pop(ITEM_ID), checked)

    @classmethod
    def stored(cls, doc: Mapping[str, Any]) -> Item:
        """An item as the catalog store holds it (validated when it was written)."""
        fields = dict(doc)
        return cls(str(fields.pop(ITEM_ID)), fields)


# Reads the whole catalog when called: a shadow build reads it once per cycle, the incremental indexer only to
# start the live index.
CatalogReader = Callable[[], Awaitable[Sequence[Item]]]
