"""Our OpenSearch clients against a secured cluster: TLS verified with a CA file, HTTP basic auth.

The Maven distribution we run has no security plugin (opensearch-security is not on Maven Central), so the
secured endpoint is a TLS + basic-auth proxy in front of the real node (tls_support.SecuredProxy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from tls_support import Certificates, SecuredProxy, make_certificates

from contract.settings import Settings
from search.client import build_client
from search.errors import SearchError
from stack import single

USER, PASSWORD = "lockstep-test", "a-long-test-password"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a server certificate for 127.0.0.1."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def proxy(stack_settings: Settings, certificates: Certificates) -> Iterator[SecuredProxy]:
    """HTTPS + basic auth in front of the stack's OpenSearch."""
    started = SecuredProxy(stack_settings.opensearch_endpoint, certificates, USER, PASSWORD).start()
    yield started
    started.stop()


def _secured(
    settings: Settings, proxy: SecuredProxy, certificates: Certificates, **update: object
) -> Settings:
    return settings.model_copy(
        update={
            "opensearch_url": proxy.url,
            "opensearch_username": USER,
            "opensearch_password": SecretStr(PASSWORD),
            "opensearch_ca_file": certificates.ca,
            **update,
        }
    )


async def _search_calls(settings: Settings) -> tuple[list[str], bool]:
    engine = build_client(settings)
    try:
        return await engine.cluster_problems(), await engine.index_exists(f"{settings.index_prefix}-nothing")
    finally:
        await engine.aclose()


def test_the_search_client_speaks_tls_with_a_ca_file_and_basic_auth(
    settings: Settings, proxy: SecuredProxy, certificates: Certificates
) -> None:
    problems, exists = asyncio.run(_search_calls(_secured(settings, proxy, certificates)))
    assert problems == [] and exists is False
    assert proxy.refused == 0


@pytest.mark.parametrize(
    "wrong",
    [
        {"opensearch_password": SecretStr("not-the-password")},
        {"opensearch_username": None},
        {"opensearch_ca_file": None},  # the system's CAs do not know ours: verification fails
    ],
    ids=["wrong password", "no user", "no CA file"],
)
def test_a_wrong_login_or_an_unverified_certificate_is_refused(
    settings: Settings, proxy: SecuredProxy, certificates: Certificates, wrong: dict[str, object]
) -> None:
    with pytest.raises(SearchError):
        asyncio.run(_search_calls(_secured(settings, proxy, certificates, **wrong)))


def test_verification_can_be_switched_off_for_tests_only(
    settings: Settings, proxy: SecuredProxy, certificates: Certificates
) -> None:
    unverified = _secured(
        settings, proxy, certificates, opensearch_ca_file=None, opensearch_verify_certs=False
    )
    problems, _ = asyncio.run(_search_calls(unverified))
    assert problems == []


def test_services_status_probes_a_secured_cluster_with_its_login(
    settings: Settings, proxy: SecuredProxy, certificates: Certificates, tmp_path: Path
) -> None:
    secured = _secured(settings, proxy, certificates, state_dir=tmp_path)
    status = single.status(secured)
    assert status.opensearch.healthy and status.knn_plugin is not None, status.opensearch.detail
    anonymous = single.status(secured.model_copy(update={"opensearch_username": None}))
    assert not anonymous.opensearch.healthy
