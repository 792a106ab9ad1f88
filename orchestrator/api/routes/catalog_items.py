"""The item catalog: read, create or replace, patch and delete items, one at a time or in batches.

Every item is checked against the item schema (contract.items) before anything is written; a write is the
item and its change event together (catalog.store), which the incremental indexer applies to the live index
and the next shadow build reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from catalog.store import SchemaChanged
from contract import routes
from contract.items import ITEM_ID, ItemError, schema
from contract.wire import (
    ENTITY_ID,
    MAX_CATALOG_BATCH,
    CatalogBatchRequest,
    CatalogBatchResponse,
    CatalogDeleted,
)
from orchestrator.api.deps import AUTH_ERRORS, CatalogDep, ReaderDep, role_doc, role_line
from orchestrator.errors import CatalogSchemaChanged, InvalidField, UnknownItem, documented
from service.auth import GuardedRoute, Role

router = APIRouter(tags=["catalog"], route_class=GuardedRoute)

ItemId = Annotated[str, Path(pattern=ENTITY_ID.pattern, max_length=128, description="Item id.")]
Fields = Annotated[
    dict[str, Any],
    Body(description="Fields of the item schema (GET /v1/item-schema lists them); item_id may be left out."),
]


def _body(*, partial: bool) -> dict[str, Any]:
    """The request body's documented schema: the item schema's fields (the process's, at start)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema().json_schema(partial=partial)}},
        }
    }


def _batch_body() -> dict[str, Any]:
    item = schema().json_schema()
    item["required"] = [ITEM_ID, *item.get("required", [])]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "upsert": {"type": "array", "items": item, "maxItems": MAX_CATALOG_BATCH},
                            "delete": {
                                "type": "array",
                                "items": {"type": "string", "maxLength": 128, "pattern": ENTITY_ID.pattern},
                                "maxItems": MAX_CATALOG_BATCH,
                            },
                        },
                    }
                }
            },
        }
    }


def _checked(item_id: str, fields: dict[str, Any], *, partial: bool, where: str = "") -> dict[str, Any]:
    """The fields validated against the schema, or 422 naming the field (and the item)."""
    given = fields.get(ITEM_ID, item_id)
    if given != item_id:
        raise InvalidField(f"{where}{ITEM_ID}: {given!r} differs from the path's {item_id!r}")
    try:
        return schema().validate_item({**fields, ITEM_ID: item_id}, partial=partial)
    except ItemError as exc:
        raise InvalidField(f"{where}{exc.field}: {exc}") from exc


def _schema_conflict(exc: SchemaChanged) -> CatalogSchemaChanged:
    return CatalogSchemaChanged(f"item schema: {exc}")


@router.get(
    routes.ITEM_SCHEMA,
    summary="The item schema in effect",
    description=f"{role_line(Role.READER)} Fields, kinds and roles (popularity, quality, content, partition)"
    ".",
    responses=documented(*AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def item_schema(ctx: ReaderDep) -> dict[str, Any]:
    """The schema the orchestrator validates items with."""
    return {**schema().model_dump(mode="json"), "fingerprint": schema().fingerprint()}


@router.get(
    routes.CATALOG_ITEM,
    summary="One item of the catalog",
    description=role_line(Role.READER),
    responses=documented(UnknownItem, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def get_item(item_id: ItemId, ctx: ReaderDep) -> dict[str, Any]:
    """The stored item."""
    found = await ctx.state.items.get([item_id])
    if item_id not in found:
        raise UnknownItem(f"item_id: no item {item_id!r} in the catalog")
    return found[item_id]


@router.put(
    routes.CATALOG_ITEM,
    summary="Create or replace an item",
    description=f"{role_line(Role.CATALOG)} The whole item: fields left out are removed. Checked against the "
    "item schema first (422 naming the field); the change reaches the live index with the next incremental "
    "cycle and every index with the next shadow build.",
    responses=documented(CatalogSchemaChanged, *AUTH_ERRORS),
    openapi_extra={**role_doc(Role.CATALOG), **_body(partial=False)},
)
async def put_item(item_id: ItemId, fields: Fields, ctx: CatalogDep) -> dict[str, Any]:
    """Store the item and its change event."""
    doc = _checked(item_id, fields, partial=False)
    try:
        await ctx.state.items.put([doc])
    except SchemaChanged as exc:
        raise _schema_conflict(exc) from exc
    return doc


@router.patch(
    routes.CATALOG_ITEM,
    summary="Change some fields of an item",
    description=f"{role_line(Role.CATALOG)} Only the fields given change; null removes a field (not a "
    "required one). 404 when there is no such item.",
    responses=documented(UnknownItem, CatalogSchemaChanged, *AUTH_ERRORS),
    openapi_extra={**role_doc(Role.CATALOG), **_body(partial=True)},
)
async def patch_item(item_id: ItemId, fields: Fields, ctx: CatalogDep) -> dict[str, Any]:
    """The item after the patch."""
    changes = _checked(item_id, fields, partial=True)
    changes.pop(ITEM_ID)
    try:
        patched = await ctx.state.items.patch(item_id, changes)
    except SchemaChanged as exc:
        raise _schema_conflict(exc) from exc
    if patched is None:
        raise UnknownItem(f"item_id: no item {item_id!r} in the catalog (PUT creates one)")
    return patched


@router.delete(
    routes.CATALOG_ITEM,
    response_model=CatalogDeleted,
    summary="Delete an item",
    description=f"{role_line(Role.CATALOG)} 404 when there is no such item.",
    responses=documented(UnknownItem, CatalogSchemaChanged, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.CATALOG),
)
async def delete_item(item_id: ItemId, ctx: CatalogDep) -> CatalogDeleted:
    """Remove the item; its delete event follows."""
    try:
        deleted = await ctx.state.items.delete([item_id])
    except SchemaChanged as exc:
        raise _schema_conflict(exc) from exc
    if not deleted:
        raise UnknownItem(f"item_id: no item {item_id!r} in the catalog")
    return CatalogDeleted(item_id=item_id, deleted=True)


@router.post(
    routes.CATALOG_BATCH,
    response_model=CatalogBatchResponse,
    summary="Create, replace and delete many items",
    description=f"{role_line(Role.CATALOG)} Up to {MAX_CATALOG_BATCH} entries. Every item is checked first: "
    "one bad item (422 naming `upsert[i].field`) and nothing is written. Upserts are written before deletes.",
    responses=documented(CatalogSchemaChanged, *AUTH_ERRORS),
    openapi_extra={**role_doc(Role.CATALOG), **_batch_body()},
)
async def batch(body: CatalogBatchRequest, ctx: CatalogDep) -> CatalogBatchResponse:
    """Write the batch once all of it checked out."""
    docs: dict[str, dict[str, Any]] = {}
    for position, raw in enumerate(body.upsert):
        item_id = raw.get(ITEM_ID)
        if not isinstance(item_id, str) or not ENTITY_ID.fullmatch(item_id):
            raise InvalidField(f"upsert[{position}].{ITEM_ID}: must be a string matching {ENTITY_ID.pattern}")
        docs[item_id] = _checked(item_id, raw, partial=False, where=f"upsert[{position}].")
    both = sorted(set(docs) & set(body.delete))
    if both:
        raise InvalidField(f"delete: {both[0]!r} is also in upsert")
    try:
        upserted = await ctx.state.items.put(list(docs.values()))
        deleted = await ctx.state.items.delete(list(dict.fromkeys(body.delete)))
    except SchemaChanged as exc:
        raise _schema_conflict(exc) from exc
    return CatalogBatchResponse(upserted=upserted, deleted=deleted)
