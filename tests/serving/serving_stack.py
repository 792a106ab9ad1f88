"""The serving test stack: orchestrator and serving on free ports, with proxies to cut their links."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from serving_support import Proxy, Server, World, free_port, register

from contract.settings import Settings
from orchestrator.main import create_app as create_orchestrator
from serving.main import create_app as create_serving


@dataclass
class Stack:
    """A running orchestrator and serving, the proxies between them, and an HTTP client of serving."""

    world: World
    settings: Settings  # serving's settings
    orchestrator: Server
    serving: Server
    orchestrator_link: Proxy  # serving -> orchestrator
    search_link: Proxy  # serving -> OpenSearch
    client: httpx.Client

    def recommend(self, **body: object) -> httpx.Response:
        """POST /v1/recommend."""
        return self.client.post("/v1/recommend", json=body)


def start_stack(
    settings: Settings, world: World, in_use: str, **serving_overrides: object
) -> Iterator[Stack]:
    """Orchestrator, proxies and serving, torn down afterwards."""
    orch_settings = settings.model_copy(update={"orchestrator_poll_seconds": 0.05})
    orchestrator = Server(create_orchestrator(orch_settings), free_port())
    orchestrator.start()
    register(orchestrator.url, settings, world, in_use)
    orch_link = Proxy(orchestrator.port)
    search_link = Proxy(int(settings.opensearch_endpoint.rsplit(":", 1)[1]))
    serving_settings = settings.model_copy(
        update={
            "orchestrator_url": orch_link.url,
            "opensearch_url": search_link.url,
            "serving_staleness_seconds": 0.2,
            "serving_orchestrator_timeout_seconds": 0.5,
            "serving_opensearch_timeout_seconds": 1.0,
            **serving_overrides,
        }
    )
    serving = Server(create_serving(serving_settings), free_port())
    serving.start()
    # An admin key: it admits every serving route (test_serving_auth checks the roles one by one).
    admin = {"Authorization": f"Bearer {settings.admin_keys[0].get_secret_value()}"}
    client = httpx.Client(base_url=serving.url, timeout=10, headers=admin)
    try:
        yield Stack(world, serving_settings, orchestrator, serving, orch_link, search_link, client)
    finally:
        client.close()
        serving.stop()
        orch_link.close()
        search_link.close()
        orchestrator.stop()
