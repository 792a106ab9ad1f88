"""OpenAPI for errors: each route's error statuses with the names they carry, all as ErrorBody."""

from __future__ import annotations

from typing import Any

from contract.errors import ErrorName
from contract.wire import ErrorBody
from service.errors import BadRequest, BodyTooLarge, InvalidField, ServiceError, UnsupportedMediaType

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")  # FastAPI's 422 shape, never sent
# What any route with a body may answer before it runs (service.middleware.BodyCheck, JSON parsing).
_BODY_ERRORS = (BadRequest, BodyTooLarge, UnsupportedMediaType, InvalidField)
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def documented(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses`: each status with the error names it may carry."""
    by_status: dict[int, set[str]] = {}
    for error in errors:
        by_status.setdefault(error.status, set()).add(error.name)
    return {
        status: {"model": ErrorBody, "description": " | ".join(sorted(names))}
        for status, names in sorted(by_status.items())
    }


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document made true to what the services send, and self-contained.

    Schemas given inline with their own `$defs` (a route that validates its body itself) move into
    `components/schemas`, so every `$ref` resolves; every 4xx is the ErrorBody shape (FastAPI's
    HTTPValidationError is never sent); routes with a body or parameters list the refusals of the shared
    layers (400, 413, 415, 422).
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _hoist_defs(schema, components)
    for name in _FASTAPI_VALIDATION:
        components.pop(name, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method in _METHODS:
                _error_responses(operation)
    return schema


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for name, definition in current.pop("$defs", {}).items():
                components.setdefault(name, definition)
                stack.append(definition)
            for key, value in current.items():  # `$ref`s, and a discriminator's `mapping` values
                if isinstance(value, str) and value.startswith("#/$defs/"):
                    current[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
                else:
                    stack.append(value)
        elif isinstance(current, list):
            stack.extend(current)


def _error_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    wanted: dict[str, set[str]] = {}
    if "requestBody" in operation:
        for error in _BODY_ERRORS:
            wanted.setdefault(str(error.status), set()).add(error.name)
    if operation.get("parameters"):
        wanted.setdefault("422", set()).add(ErrorName.INVALID_FIELD)
    for status, names in wanted.items():
        responses.setdefault(status, {"description": " | ".join(sorted(names))})
    for status, response in responses.items():
        if status.startswith("4") or status.startswith("5"):
            description = str(response.get("description", ""))
            if "Validation Error" in description:  # FastAPI's own 422 entry
                description = ErrorName.INVALID_FIELD
            response["description"] = description
            response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
