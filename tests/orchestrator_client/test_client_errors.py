"""Every refusal arrives as the class named by the wire `error` field; outages as OrchestratorUnavailable."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from client_support import Connect, Published, frame, location

from contract.settings import Settings
from contract.wire import AggregateRequest, WeightedAttribute
from orchestrator_client import OrchestratorClient
from orchestrator_client.errors import (
    Forbidden,
    InvalidField,
    NoAttributesFound,
    NoVersionInUse,
    OrchestratorRefused,
    OrchestratorUnavailable,
    RedisUnavailable,
    Unauthorized,
    UnknownType,
    UnknownUser,
    UnknownVersion,
    error_for,
)

# A Redis of the test's own is a standalone one, whichever topology the session runs on.
# A Redis of the test's own: standalone, and without the stack Redis's ACL users.
STANDALONE: dict[str, object] = {
    "redis_topology": "standalone",
    "redis_cluster_nodes": [],
    "redis_username": None,
    "redis_password": None,
}

pytestmark = pytest.mark.anyio


async def test_refusals_are_typed_by_their_wire_name(
    app_client: Connect, settings: Settings, published: Published
) -> None:
    name = published.etype.name
    first, _ = published.versions
    reader = settings.reader_keys[0].get_secret_value()
    async with app_client(settings, settings.indexer_keys[0].get_secret_value()) as indexer:
        await indexer.record_indexed(name, location(first))
        with pytest.raises(Forbidden):
            await indexer.rollback(name)
    async with app_client(settings, reader) as client:
        with pytest.raises(UnknownType) as unknown:
            await client.type_info("nope")
        assert unknown.value.status == 404 and unknown.value.detail.startswith("type_name:")
        with pytest.raises(NoVersionInUse):
            await client.user_vector(name, "u1")
        with pytest.raises(UnknownVersion):
            await client.item_vectors(name, frame(5).version_id, ["1"])
        with pytest.raises(InvalidField) as invalid:
            await client.item_vectors(name, first, ["1", "1"])
        assert invalid.value.detail.startswith("item_ids[1]:")
        with pytest.raises(Forbidden):
            await client.set_in_use(name, None, first, "reader may not")
    async with app_client(settings, settings.admin_keys[0].get_secret_value()) as admin:
        await admin.set_in_use(name, None, first, "serve it")
        with pytest.raises(UnknownUser):
            await admin.user_vector(name, "nobody")
        with pytest.raises(NoAttributesFound):
            await admin.aggregate(name, AggregateRequest(attributes=[WeightedAttribute(id="item:ghost")]))
    async with app_client(settings, "not-a-known-key") as stranger:
        with pytest.raises(Unauthorized) as refused:
            await stranger.list_types()
    assert isinstance(refused.value, OrchestratorRefused) and refused.value.status == 401


async def test_redis_down_is_unavailable(app_client: Connect, settings: Settings) -> None:
    down = settings.model_copy(update={**STANDALONE, "redis_url": f"redis://127.0.0.1:{_free_port()}/0"})
    async with app_client(down, settings.reader_keys[0].get_secret_value()) as client:
        await client.healthz()
        with pytest.raises(RedisUnavailable) as readyz:
            await client.readyz()
        with pytest.raises(RedisUnavailable):
            await client.type_info("als-d8")
    assert isinstance(readyz.value, OrchestratorUnavailable) and readyz.value.status == 503


async def test_unreachable_and_silent_orchestrators_are_unavailable(settings: Settings) -> None:
    key = settings.reader_keys[0].get_secret_value()
    async with OrchestratorClient(f"http://127.0.0.1:{_free_port()}", key, timeout=5) as refused:
        with pytest.raises(OrchestratorUnavailable) as connect_error:
            await refused.type_info("als-d8")
    assert connect_error.value.status is None
    with _silent_listener() as port:
        async with OrchestratorClient(f"http://127.0.0.1:{port}", key, timeout=0.2) as silent:
            with pytest.raises(OrchestratorUnavailable, match="Timeout"):
                await silent.type_info("als-d8")


def test_names_the_client_does_not_know_fall_back_on_the_status() -> None:
    assert error_for(503, "SomethingNew") is OrchestratorUnavailable
    assert error_for(500, "UnknownType") is OrchestratorUnavailable
    assert error_for(409, "SomethingNew") is OrchestratorRefused
    assert error_for(404, "UnknownType") is UnknownType
    assert error_for(503, "RedisUnavailable") is RedisUnavailable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _silent_listener() -> Iterator[int]:
    """A port that accepts connections (into the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])
