"""Serving's HTTP client of the orchestrator: type info and user vectors, mapped to serving's errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from contract.settings import Settings
from contract.wire import InUseChange, TypeInfo, WeightedAttribute
from search.keepalive import HttpUnavailable, KeepAlivePool, Reply
from serving.errors import InvalidField, NotServable, UnknownType


class OrchestratorDown(Exception):  # noqa: N818 - a condition serving degrades on, not an HTTP error
    """The orchestrator could not be reached, timed out, or failed on its side."""


class NoUserVector(Exception):  # noqa: N818 - a condition serving falls back on
    """The orchestrator has no vector for this user (unknown user, or nothing to aggregate)."""


@dataclass(frozen=True)
class UserVec:
    """A user vector with the version it belongs to (as the orchestrator read it, consistently)."""

    type_name: str
    version: str
    vector: tuple[float, ...]
    source: str
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def _user_vec(data: dict[str, Any]) -> UserVec:
    return UserVec(
        type_name=str(data["type_name"]),
        version=str(data["version"]),
        vector=tuple(data["vector"]),
        source=str(data["source"]),
        used=tuple(data.get("used", ())),
        missing=tuple(data.get("missing", ())),
    )


class OrchestratorClient:
    """Async client over a keep-alive pool (search.keepalive: the cheapest per call); one per app."""

    def __init__(self, settings: Settings) -> None:
        self._http = KeepAlivePool(
            settings.orchestrator_url,
            settings.serving_orchestrator_timeout_seconds,
            {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"},
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: object | None = None) -> Reply:
        try:
            reply = await self._http.request(method, path, None if body is None else orjson.dumps(body))
        except HttpUnavailable as exc:
            raise OrchestratorDown(f"orchestrator {method} {path}: {exc}") from exc
        if reply.status >= 500 or reply.status in (401, 403, 429):
            # Auth failures are our misconfiguration, not the caller's: degrade rather than blame the request.
            raise OrchestratorDown(f"orchestrator {method} {path}: HTTP {reply.status}")
        return reply

    @staticmethod
    def _error(response: Reply) -> tuple[str, str]:
        try:
            body = orjson.loads(response.content)
            return str(body.get("error", "")), str(body.get("detail", ""))
        except (orjson.JSONDecodeError, AttributeError):
            return "", response.content[:200].decode("utf-8", "replace")

    def _raise_for_type(self, response: Reply, type_name: str) -> None:
        name, detail = self._error(response)
        if name == "UnknownType" or (response.status == 404 and not name):
            raise UnknownType(f"embedding_type: no embedding type {type_name!r} is registered")
        if name == "NoVersionInUse":
            raise NotServable(f"embedding_type: type {type_name!r} has no in-use version yet")
        if response.status == 422:
            raise InvalidField(detail or f"orchestrator refused the request ({name})")
        raise OrchestratorDown(f"orchestrator answered {response.status} {name}: {detail}")

    async def type_info(self, type_name: str) -> TypeInfo:
        """GET /v1/embedding-types/{type}."""
        response = await self._call("GET", f"/v1/embedding-types/{quote(type_name, safe='')}")
        if response.status != 200:
            self._raise_for_type(response, type_name)
        return TypeInfo.model_validate_json(response.content)

    async def list_types(self) -> list[TypeInfo]:
        """GET /v1/embedding-types."""
        response = await self._call("GET", "/v1/embedding-types")
        if response.status != 200:
            raise OrchestratorDown(f"orchestrator answered {response.status} listing types")
        return [TypeInfo.model_validate(item) for item in orjson.loads(response.content)]

    async def in_use_history(self, type_name: str, limit: int = 20) -> list[InUseChange]:
        """GET /v1/embedding-types/{type}/in-use/history: the newest in_use changes, newest first."""
        path = f"/v1/embedding-types/{quote(type_name, safe='')}/in-use/history?limit={limit}"
        response = await self._call("GET", path)
        if response.status != 200:
            self._raise_for_type(response, type_name)
        return [InUseChange.model_validate(item) for item in orjson.loads(response.content)]

    async def user_vector(self, type_name: str, user_id: str) -> UserVec:
        """The user's vector of the in-use version (direct, or aggregated from the profile)."""
        path = f"/v1/embedding-types/{quote(type_name, safe='')}/users/{quote(user_id, safe='')}"
        response = await self._call("GET", path)
        if response.status == 200:
            return _user_vec(orjson.loads(response.content))
        name, detail = self._error(response)
        if name in ("UnknownUser", "NoAttributesFound"):
            raise NoUserVector(detail or name)
        self._raise_for_type(response, type_name)
        raise AssertionError("unreachable")

    async def aggregate(self, type_name: str, attributes: list[WeightedAttribute]) -> UserVec:
        """A vector aggregated from explicit attributes (in-use version)."""
        path = f"/v1/embedding-types/{quote(type_name, safe='')}/users:aggregate"
        body = {"attributes": [{"id": a.id, "weight": a.weight} for a in attributes]}
        response = await self._call("POST", path, body)
        if response.status == 200:
            return _user_vec(orjson.loads(response.content))
        name, detail = self._error(response)
        if name == "NoAttributesFound":
            raise NoUserVector(detail or name)
        if name == "InvalidField" and detail.startswith("attributes"):
            raise InvalidField(detail)
        self._raise_for_type(response, type_name)
        raise AssertionError("unreachable")
