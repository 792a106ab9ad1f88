"""What the demo reads from the orchestrator over HTTP: type state (latest, in_use) and the audit trail."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from contract.settings import Settings
from contract.wire import InUseChange, TypeInfo

_HISTORY = TypeAdapter(list[InUseChange])


class Observer:
    """Reader-role client of the orchestrator."""

    def __init__(self, settings: Settings) -> None:
        self.http = httpx.AsyncClient(
            base_url=settings.orchestrator_url,
            headers={"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"},
            timeout=10.0,
        )

    async def aclose(self) -> None:
        """Close the client."""
        await self.http.aclose()

    async def type_info(self, type_name: str) -> TypeInfo | None:
        """A type's state; None while the orchestrator does not know the type yet."""
        response = await self.http.get(f"/v1/embedding-types/{quote(type_name, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return TypeInfo.model_validate_json(response.content)

    async def states(self, type_names: list[str]) -> dict[str, TypeInfo | None]:
        """Every type's state (None: unknown yet, or the orchestrator did not answer)."""
        found: dict[str, TypeInfo | None] = {}
        for name in type_names:
            try:
                found[name] = await self.type_info(name)
            except httpx.HTTPError:
                found[name] = None
        return found

    async def history(self, type_name: str) -> list[InUseChange]:
        """The in_use audit trail, newest first."""
        response = await self.http.get(f"/v1/embedding-types/{quote(type_name, safe='')}/in-use/history")
        response.raise_for_status()
        return _HISTORY.validate_json(response.content)
