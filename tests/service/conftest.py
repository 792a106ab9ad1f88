"""Service fixtures: a small app built by the shared factory, and what its request observer saw."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from service_support import Observed, build_app


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The apps run on asyncio."""
    return "asyncio"


@pytest.fixture
def observed() -> Observed:
    """Every request the app's observer counted."""
    return Observed()


@pytest.fixture
def app(observed: Observed) -> FastAPI:
    """A small app over service.app.create_service_app."""
    return build_app(observed)
