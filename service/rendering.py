"""The one error renderer, and the handlers that send every refusal and failure through it."""

from __future__ import annotations

import re
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

_PARAMETER = re.compile(r"\{[^}]*\}")
_TEMPLATE_PARTS = re.compile(r"(\{[^}]*\})")
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


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Where templates overlap, a route may take a path that names another resource (GET of
    # `/{type_name}` takes `/t:refresh`, then refuses the type name): the method is what is wrong there.
    resource = _resource_methods(request)
    if resource is not None and request.method not in resource:
        allow = ", ".join(sorted(resource | ({"HEAD"} if "GET" in resource else set())))
        return error_response(ErrorName.METHOD_NOT_ALLOWED, "path: Method Not Allowed", 405, {"Allow": allow})
    errors = exc.errors()
    malformed = malformed_json(errors)
    return render(BadRequest(malformed) if malformed else InvalidField(describe_validation(errors)))


async def _framework(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    name, about = _FRAMEWORK.get(exc.status_code, (ErrorName.HTTP_ERROR, "request"))
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request, (headers or {}).get("Allow", ""))}
    return error_response(name, f"{about}: {exc.detail}", exc.status_code, headers)


def allowed_methods(request: Request, fallback: str) -> str:
    """The Allow of a 405: the methods the OpenAPI document gives the path's resource.

    Starlette's own Allow names the methods of the first route matching the path only, which misses a
    resource's other routes (PUT and DELETE of one path) and, where templates overlap (`/{name}` and
    `/{name}:refresh`), names the wrong resource's; the template with the most literal characters is the
    resource the path names. A path the document does not list keeps Starlette's answer.
    """
    methods = _resource_methods(request)
    if methods is None:
        return fallback
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))


def _resource_methods(request: Request) -> frozenset[str] | None:
    """The documented methods of the most specific OpenAPI path template the request path fits."""
    path = request.url.path
    resources = _resources(request.app)
    matching = [(template, methods) for template, regex, methods in resources if regex.match(path)]
    if not matching:
        return None
    return max(matching, key=lambda found: len(_PARAMETER.sub("", found[0])))[1]


def _resources(app: FastAPI) -> list[tuple[str, re.Pattern[str], frozenset[str]]]:
    cached: list[tuple[str, re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "_resources", None)
    if cached is None:
        cached = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part)
                for part in _TEMPLATE_PARTS.split(template)
            )
            cached.append((template, re.compile(rf"{pattern}\Z"), frozenset(m.upper() for m in operations)))
        app.state._resources = cached
    return cached


async def _expected(_: Request, exc: Exception) -> Response:
    answer = expected_error(exc)
    assert answer is not None
    return answer


def expected_error(exc: Exception) -> Response | None:
    """The answer to what any route may raise, a refusal or the client leaving; None for anything else."""
    if isinstance(exc, ServiceError):
        return render(exc)
    if isinstance(exc, ClientDisconnect):
        # Not a 500: the client hung up mid-body, the server did nothing wrong.
        return Response(status_code=CLIENT_CLOSED)
    return None


def internal_error(exc: Exception) -> Response:
    """A bug's answer: its exception type, never its traceback."""
    return error_response(ErrorName.INTERNAL_ERROR, f"{type(exc).__name__}: unexpected error", 500)


def install_handlers(app: FastAPI) -> None:
    """Route every expected error through the renderer (service.middleware.Unexpected takes the rest)."""
    app.add_exception_handler(ServiceError, _expected)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _framework)
    app.add_exception_handler(ClientDisconnect, _expected)
