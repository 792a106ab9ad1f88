"""The one error renderer, and the handlers that send every refusal and failure through it."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from contract.errors import ErrorName
from service.errors import BadRequest, InvalidField, ServiceError
from service.validation import describe_validation, malformed_json

CLIENT_CLOSED = 499  # nginx's "client closed request": the client left, nobody reads the answer

# Refusals of the router itself: the wire name and the field the detail is about.
_FRAMEWORK: Mapping[int, tuple[ErrorName, str]] = {
    400: (ErrorName.BAD_REQUEST, "body"),  # FastAPI could read the body but not decode it
    404: (ErrorName.NOT_FOUND, "path"),
    405: (ErrorName.METHOD_NOT_ALLOWED, "path"),
}


def error_response(
    name: ErrorName, detail: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """The `{"error", "detail"}` body (contract.wire.ErrorBody) every error of every service has."""
    return Response(
        orjson.dumps({"error": name, "detail": detail}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def render(error: ServiceError) -> Response:
    """A ServiceError as its response."""
    return error_response(error.name, error.detail, error.status, error.headers)


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return render(exc)


async def _invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = malformed_json(errors)
    return render(BadRequest(malformed) if malformed else InvalidField(describe_validation(errors)))


async def _framework(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    name, about = _FRAMEWORK.get(exc.status_code, (ErrorName.HTTP_ERROR, "request"))
    return error_response(name, f"{about}: {exc.detail}", exc.status_code, exc.headers)


async def _client_gone(_: Request, __: Exception) -> Response:
    # Handled here rather than as a 500: the client hung up mid-body, the server did nothing wrong.
    return Response(status_code=CLIENT_CLOSED)


def internal_error(exc: Exception) -> Response:
    """A bug's answer: its exception type, never its traceback."""
    return error_response(ErrorName.INTERNAL_ERROR, f"{type(exc).__name__}: unexpected error", 500)


def install_handlers(app: FastAPI) -> None:
    """Route every expected error through the renderer (service.middleware.Unexpected takes the rest)."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _framework)
    app.add_exception_handler(ClientDisconnect, _client_gone)
