"""What the demo reads from the orchestrator: each type's state (latest, in_use), over the typed client."""

from __future__ import annotations

from contract.settings import Settings
from contract.wire import TypeInfo
from orchestrator_client import OrchestratorClient
from orchestrator_client.errors import OrchestratorCallError


def reader(settings: Settings) -> OrchestratorClient:
    """A reader-role client of the orchestrator."""
    return OrchestratorClient(settings.orchestrator_url, settings.reader_key.get_secret_value(), timeout=10.0)


async def states(client: OrchestratorClient, type_names: list[str]) -> dict[str, TypeInfo | None]:
    """Every type's state (None: not registered yet, UnknownType, or no answer)."""
    found: dict[str, TypeInfo | None] = {}
    for name in type_names:
        try:
            found[name] = await client.type_info(name)
        except OrchestratorCallError:
            found[name] = None
    return found
