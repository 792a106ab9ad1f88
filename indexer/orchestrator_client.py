"""The indexer's async HTTP client of the orchestrator (indexer role)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from contract.indexing import IndexedLocation
from contract.settings import IndexerSettings
from contract.vectors import Matrix, from_base64
from contract.wire import (
    MAX_BATCH_ITEMS,
    InUseChange,
    InUseUpdate,
    ItemsBatchRequest,
    ItemsBatchResponse,
    TypeInfo,
)
from indexer.errors import InUseConflictError, OrchestratorError


@dataclass(frozen=True)
class ItemVectors:
    """Item vectors of one version: `ids[i]` has row `matrix[i]`; `missing` had none."""

    version: str
    ids: tuple[str, ...]
    matrix: Matrix
    missing: tuple[str, ...]


class OrchestratorClient:
    """Typed async calls to the orchestrator; maps transport and HTTP errors to OrchestratorError."""

    def __init__(self, settings: IndexerSettings, *, timeout: float | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=settings.orchestrator_url,
            headers={"Authorization": f"Bearer {settings.indexer_key.get_secret_value()}"},
            # items:batch of 1000 vectors is bigger than a lookup; give it more than the per-call default.
            timeout=timeout if timeout is not None else max(10.0, settings.request_timeout_seconds),
        )

    async def __aenter__(self) -> OrchestratorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise OrchestratorError(f"{method} {path}: orchestrator unreachable: {exc}") from exc
        if response.status_code >= 400:
            try:
                name = str(response.json().get("error", ""))
            except ValueError:
                name = ""
            message = f"{method} {path}: HTTP {response.status_code}: {response.text}"
            if name == "InUseConflict":
                raise InUseConflictError(message, status=response.status_code, name=name)
            raise OrchestratorError(message, status=response.status_code, name=name)
        return response

    async def types(self) -> list[TypeInfo]:
        """Every registered type with latest, in_use, published and indexed versions."""
        body = (await self._call("GET", "/v1/embedding-types")).json()
        rows = body["types"] if isinstance(body, dict) and "types" in body else body
        return [TypeInfo.model_validate(row) for row in rows]

    async def type_info(self, type_name: str) -> TypeInfo:
        """One type's state."""
        response = await self._call("GET", f"/v1/embedding-types/{type_name}")
        return TypeInfo.model_validate(response.json())

    async def in_use_history(self, type_name: str, limit: int = 1000) -> list[InUseChange]:
        """The in_use audit trail, newest first (who moved it, when, from, to, why)."""
        response = await self._call("GET", f"/v1/embedding-types/{type_name}/in-use/history?limit={limit}")
        rows = response.json()
        return [InUseChange.model_validate(row) for row in rows]

    async def item_vectors(self, type_name: str, version: str, item_ids: list[str]) -> ItemVectors:
        """Vectors of `item_ids` of one version, fetched in batches of the wire maximum."""
        ids: list[str] = []
        parts: list[Matrix] = []
        missing: list[str] = []
        dim = 0
        for start in range(0, len(item_ids), MAX_BATCH_ITEMS):
            request = ItemsBatchRequest(version=version, item_ids=item_ids[start : start + MAX_BATCH_ITEMS])
            response = await self._call(
                "POST", f"/v1/embedding-types/{type_name}/items:batch", json=request.model_dump(mode="json")
            )
            raw = response.json()
            batch = ItemsBatchResponse.model_validate(raw)
            if batch.version != version:
                raise OrchestratorError(f"items:batch answered version {batch.version}, asked {version}")
            dim = batch.dim
            if batch.ids:
                parts.append(from_base64(batch.vectors, batch.dim))
            ids.extend(batch.ids)
            missing.extend(batch.missing)
        matrix = np.concatenate(parts) if parts else np.zeros((0, max(dim, 1)), dtype=np.float32)
        if matrix.shape[0] != len(ids):
            raise OrchestratorError(f"items:batch returned {matrix.shape[0]} rows for {len(ids)} ids")
        return ItemVectors(version=version, ids=tuple(ids), matrix=matrix, missing=tuple(missing))

    async def record_indexed(self, type_name: str, location: IndexedLocation) -> None:
        """Tell the orchestrator a version is fully indexed and visible at `location`."""
        await self._call(
            "PUT",
            f"/v1/embedding-types/{type_name}/indexed/{location.version}",
            json=location.model_dump(mode="json"),
        )

    async def forget_indexed(self, type_name: str, version: str) -> None:
        """Withdraw an indexed record (its index or slot is about to go away); refused while in use."""
        try:
            await self._call("DELETE", f"/v1/embedding-types/{type_name}/indexed/{version}")
        except OrchestratorError as exc:
            if exc.status != 404:
                raise

    async def set_in_use(self, type_name: str, expected: str | None, version: str, reason: str) -> None:
        """Compare-and-set in_use; raises InUseConflictError when `expected` is stale."""
        update = InUseUpdate(expected=expected, version=version, reason=reason)
        path = f"/v1/embedding-types/{type_name}/in-use"
        await self._call("PUT", path, json=update.model_dump(mode="json"))
