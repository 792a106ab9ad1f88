"""Helpers of the indexer tests."""

from __future__ import annotations

import time

import httpx

from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity

CATALOG_SIZE = 300
USERS = 40


def make_type(
    name: str = "als-d8", dim: int = 8, similarity: Similarity = Similarity.COSINE
) -> EmbeddingType:
    """A direct-direct type for tests."""
    return EmbeddingType(name=name, family=Family.DIRECT_DIRECT, dim=dim, similarity=similarity)


def wait_latest(settings: Settings, type_name: str, version: str, timeout: float = 10.0) -> None:
    """Wait until the orchestrator's poller has seen `version` as latest."""
    headers = {"Authorization": f"Bearer {settings.indexer_key.get_secret_value()}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{settings.orchestrator_url}/v1/embedding-types/{type_name}", headers=headers, timeout=2
        )
        if r.status_code == 200 and r.json()["latest"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"orchestrator never saw {version} as latest of {type_name}")
