"""/metrics shows cache counters and request counts; the OpenAPI page documents routes, roles, errors."""

from __future__ import annotations

import pytest
from orchestrator_support import AppFactory, Fixtures, auth, direct_type, frame, rows

from contract import routes
from contract.keys import Kind
from contract.settings import Settings

pytestmark = pytest.mark.anyio


def _value(metrics: str, name: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(name))
    return float(line.split()[-1])


async def test_metrics_show_cache_hits_and_misses(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = direct_type()
    fixtures.register(etype)
    version = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 2, 8, 1)})
    fixtures.set_in_use(etype, version)
    async with app_client(orch_settings) as client:
        for _ in range(3):
            response = await client.get(
                routes.user_vector_path(etype.name, "u0"), headers=auth(orch_settings, "reader")
            )
            assert response.status_code == 200
        text = (await client.get("/metrics")).text
    assert _value(text, "lockstep_orchestrator_cache_misses_total") == 1
    assert _value(text, "lockstep_orchestrator_cache_hits_total") == 2
    assert (
        f'lockstep_orchestrator_requests_total{{method="GET",route="{routes.USER_VECTOR}",status="200"}} 3.0'
        in text
    )
    assert (
        f'lockstep_orchestrator_version_info{{type="{etype.name}",version="{version}",which="in_use"}} 1.0'
        in text
    )


async def test_openapi_documents_every_route_role_and_error(
    app_client: AppFactory, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    v1 = [(p, m, op) for p, m, op in operations if p.startswith("/v1/")]
    assert len(v1) == 18  # indexed/{version} has PUT and DELETE; an item GET, PUT, PATCH and DELETE
    expected_paths = {
        routes.TYPES,
        routes.TYPE,
        routes.TYPE_REFRESH,
        routes.USER_VECTOR,
        routes.AGGREGATE,
        routes.USERS_SAMPLE,
        routes.ITEMS_BATCH,
        routes.IN_USE,
        routes.IN_USE_HISTORY,
        routes.ROLLBACK,
        routes.INDEXED,
        routes.CATALOG_ITEM,
        routes.CATALOG_BATCH,
        routes.ITEM_SCHEMA,
    }
    assert {p for p, _, _ in v1} == expected_paths
    for path, method, op in v1:
        assert op["x-roles"], (path, method)
        assert op["description"].startswith("**Roles:**"), (path, method)
        assert op.get("security"), (path, method)
        for status in ("401", "403", "422", "503"):
            assert status in op["responses"], (path, method, status)
            assert "ErrorBody" in str(op["responses"][status]), (path, method, status)
    roles = {(p, m): op["x-roles"] for p, m, op in v1}
    assert roles[(routes.ROLLBACK, "post")] == ["admin"]
    assert roles[(routes.IN_USE, "put")] == ["admin", "indexer"]
    assert roles[(routes.USER_VECTOR, "get")] == ["admin", "indexer", "reader"]
    for method in ("put", "patch", "delete"):
        assert roles[(routes.CATALOG_ITEM, method)] == ["admin", "catalog"]
    assert roles[(routes.CATALOG_BATCH, "post")] == ["admin", "catalog"]
    batch = spec["paths"][routes.ITEMS_BATCH]["post"]
    assert "base64" in batch["description"] and "float32" in batch["description"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
