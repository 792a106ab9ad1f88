"""The shipped dev-* keys work only in development mode; configured keys work in both."""

from __future__ import annotations

import pytest
from orchestrator_support import AppFactory
from pydantic import SecretStr

from contract import routes
from contract.settings import Settings

pytestmark = pytest.mark.anyio


async def test_dev_keys_are_refused_outside_development_mode(
    app_client: AppFactory, orch_settings: Settings
) -> None:
    production = orch_settings.model_copy(
        update={
            "development": False,
            "reader_keys": [SecretStr("dev-reader-1"), SecretStr("prod-reader-key")],
        }
    )
    async with app_client(production) as client:
        refused = await client.get(routes.types_path(), headers={"Authorization": "Bearer dev-reader-1"})
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "Unauthorized"
        assert "LOCKSTEP_DEVELOPMENT" in refused.json()["detail"]

        own = await client.get(routes.types_path(), headers={"Authorization": "Bearer prod-reader-key"})
        assert own.status_code == 200, own.text


async def test_dev_keys_work_in_development_mode(app_client: AppFactory, orch_settings: Settings) -> None:
    assert orch_settings.development
    async with app_client(orch_settings) as client:
        response = await client.get(routes.types_path(), headers={"Authorization": "Bearer dev-reader-1"})
        assert response.status_code == 200, response.text
