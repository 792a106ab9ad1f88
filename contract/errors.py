"""Every `error` name a Lockstep service answers with: one list, so clients match names, never texts."""

from __future__ import annotations

from enum import StrEnum


class ErrorName(StrEnum):
    """The `error` field of an ErrorBody; both services use the same name for the same meaning."""

    # Either service: the request itself.
    BAD_REQUEST = "BadRequest"  # 400: the body is not JSON
    UNAUTHORIZED = "Unauthorized"  # 401
    FORBIDDEN = "Forbidden"  # 403
    NOT_FOUND = "NotFound"  # 404: no route at that path
    METHOD_NOT_ALLOWED = "MethodNotAllowed"  # 405
    BODY_TOO_LARGE = "BodyTooLarge"  # 413: over contract.wire.MAX_BODY_BYTES
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"  # 415: a body that is not application/json
    INVALID_FIELD = "InvalidField"  # 422: the detail names the field, e.g. attributes[0].weight
    HTTP_ERROR = "HTTPError"  # any other refusal of the web framework itself
    INTERNAL_ERROR = "InternalError"  # 500: a bug; the detail never carries a traceback
    OVERLOADED = "Overloaded"  # 503 with Retry-After: the process is at its *_max_in_flight; retry

    # Either service: what the request names.
    UNKNOWN_TYPE = "UnknownType"  # 404
    UNKNOWN_USER = "UnknownUser"  # 404

    # The orchestrator.
    UNKNOWN_VERSION = "UnknownVersion"  # 404
    NO_ATTRIBUTES_FOUND = "NoAttributesFound"  # 422
    NO_VERSION_IN_USE = "NoVersionInUse"  # 409
    IN_USE_CONFLICT = "InUseConflict"  # 409
    NOT_PUBLISHED = "NotPublished"  # 409
    NOT_INDEXED = "NotIndexed"  # 409
    NO_ROLLBACK_TARGET = "NoRollbackTarget"  # 409
    VERSION_IN_USE = "VersionInUse"  # 409
    CORRUPT_DATA = "CorruptData"  # 500
    REDIS_UNAVAILABLE = "RedisUnavailable"  # 503 with Retry-After
    CATALOG_SCHEMA_CHANGED = "CatalogSchemaChanged"  # 409: the catalog was written under another item schema

    # Serving, and the orchestrator's catalog.
    UNKNOWN_ITEM = "UnknownItem"  # 404
    UNKNOWN_ASSET = "UnknownAsset"  # 404: the explorer has no such file
    NOT_SERVABLE = "NotServable"  # 409
    UNAVAILABLE = "Unavailable"  # 503 with Retry-After
