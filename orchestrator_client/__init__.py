"""The one typed client of the orchestrator's HTTP API, on contract.wire models at both ends."""

from orchestrator_client.client import ItemVectors, OrchestratorClient, connection_pool

__all__ = ["ItemVectors", "OrchestratorClient", "connection_pool"]
