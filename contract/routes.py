"""The orchestrator's HTTP paths: the templates its routers declare, and builders that quote each segment."""

from __future__ import annotations

from urllib.parse import quote

TYPES = "/v1/embedding-types"
TYPE = f"{TYPES}/{{type_name}}"
TYPE_REFRESH = f"{TYPE}:refresh"
USER_VECTOR = f"{TYPE}/users/{{user_id}}"
AGGREGATE = f"{TYPE}/users:aggregate"
USERS_SAMPLE = f"{TYPE}/users:sample"
ITEMS_BATCH = f"{TYPE}/items:batch"
IN_USE = f"{TYPE}/in-use"
IN_USE_HISTORY = f"{TYPE}/in-use/history"
ROLLBACK = f"{TYPE}/rollback"
INDEXED = f"{TYPE}/indexed/{{version}}"
CATALOG_ITEM = "/v1/items/{item_id}"
CATALOG_BATCH = "/v1/items:batch"
ITEM_SCHEMA = "/v1/item-schema"
HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"


def _segment(value: str) -> str:
    # Every character that could end the segment or start a query ('/', '?', '#', ' ', ...) is escaped.
    return quote(value, safe="")


def types_path() -> str:
    """GET: every registered type."""
    return TYPES


def type_path(type_name: str) -> str:
    """GET: one type's state."""
    return TYPE.format(type_name=_segment(type_name))


def type_refresh_path(type_name: str) -> str:
    """POST: re-read a type's published versions now."""
    return TYPE_REFRESH.format(type_name=_segment(type_name))


def user_vector_path(type_name: str, user_id: str) -> str:
    """GET: a user's vector of the in-use version."""
    return USER_VECTOR.format(type_name=_segment(type_name), user_id=_segment(user_id))


def aggregate_path(type_name: str) -> str:
    """POST: a vector aggregated from attributes or a stored profile."""
    return AGGREGATE.format(type_name=_segment(type_name))


def users_sample_path(type_name: str) -> str:
    """GET: a random sample of one version's user vectors (query parameters `version`, `count`)."""
    return USERS_SAMPLE.format(type_name=_segment(type_name))


def items_batch_path(type_name: str) -> str:
    """POST: item vectors of one version."""
    return ITEMS_BATCH.format(type_name=_segment(type_name))


def in_use_path(type_name: str) -> str:
    """PUT: compare-and-set in_use."""
    return IN_USE.format(type_name=_segment(type_name))


def in_use_history_path(type_name: str) -> str:
    """GET: the in_use audit trail (query parameter `limit`)."""
    return IN_USE_HISTORY.format(type_name=_segment(type_name))


def rollback_path(type_name: str) -> str:
    """POST: roll in_use back."""
    return ROLLBACK.format(type_name=_segment(type_name))


def indexed_path(type_name: str, version: str) -> str:
    """PUT / DELETE: a version's indexed record."""
    return INDEXED.format(type_name=_segment(type_name), version=_segment(version))


def catalog_item_path(item_id: str) -> str:
    """GET, PUT, PATCH, DELETE: one item of the catalog."""
    return CATALOG_ITEM.format(item_id=_segment(item_id))
