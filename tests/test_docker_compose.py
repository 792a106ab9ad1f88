"""docker-compose.yml checked statically against our Settings (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from contract.settings import Settings
from stack.layout import OPENSEARCH_VERSION

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APPS = ("orchestrator", "serving", "indexer")
PINNED = re.compile(r"^[a-z0-9./_-]+:\d+\.\d+\.\d+[a-z0-9.-]*$")


def _default(field: str) -> Any:
    return Settings.model_fields[field].default


def _ports(service: str) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each published port."""
    out = []
    for spec in SERVICES[service].get("ports", []):
        ip, host, container = str(spec).split(":")
        out.append((ip, int(host), int(container)))
    return out


def _env(service: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def test_the_stack_has_its_five_services_and_named_volumes() -> None:
    assert set(SERVICES) == {"opensearch", "redis", *APPS}
    declared = set(COMPOSE["volumes"])
    assert {"opensearch-data", "redis-data"} <= declared
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith(("/", ".", "$")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert "opensearch-data:/usr/share/opensearch/data" in SERVICES["opensearch"]["volumes"]
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service: str) -> None:
    image = SERVICES[service]["image"]
    assert PINNED.match(image), f"{service}: image {image!r} is not pinned to an exact version"
    assert not image.endswith(":latest")


def test_opensearch_is_the_version_the_local_stack_runs() -> None:
    assert SERVICES["opensearch"]["image"] == f"opensearchproject/opensearch:{OPENSEARCH_VERSION}"


def test_dockerfile_base_image_is_pinned_and_installs_the_lockfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases and all(PINNED.match(base) for base in bases), bases
    assert all(base.startswith("python:3.11") for base in bases)
    assert "uv sync --frozen" in dockerfile
    for app in APPS:
        assert SERVICES[app]["build"]["dockerfile"] == "Dockerfile"


def test_security_plugin_is_disabled_only_here_and_said_so() -> None:
    env = _env("opensearch")
    assert env["DISABLE_SECURITY_PLUGIN"] == "true"
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    comment = COMPOSE_TEXT.split("DISABLE_SECURITY_PLUGIN", 1)[0].rsplit("OPENSEARCH_JAVA_OPTS", 1)[1]
    assert "LOCAL STACK ONLY" in comment and "security" in comment


def test_every_lockstep_env_name_is_a_settings_field_and_the_values_validate() -> None:
    for app in APPS:
        env = _env(app)
        names = [name for name in env if name.startswith("LOCKSTEP_")]
        assert names == list(env), f"{app}: non-LOCKSTEP variables {set(env) - set(names)}"
        unknown = [
            name for name in names if name.removeprefix("LOCKSTEP_").lower() not in Settings.model_fields
        ]
        assert unknown == [], f"{app}: {unknown} are not Settings fields"
        settings = Settings(**{name.removeprefix("LOCKSTEP_").lower(): value for name, value in env.items()})
        assert settings.knn_engine == "lucene"
        assert urlsplit(settings.opensearch_endpoint).hostname == "opensearch"
        assert urlsplit(settings.redis_endpoint).hostname == "redis"


def test_host_ports_are_the_settings_defaults_on_loopback() -> None:
    assert _ports("opensearch") == [("127.0.0.1", _default("opensearch_port"), 9200)]
    assert _ports("redis") == [("127.0.0.1", _default("redis_port"), 6379)]
    for app in ("orchestrator", "serving"):
        default_port = urlsplit(_default(f"{app}_url")).port
        assert _ports(app) == [("127.0.0.1", default_port, default_port)]


def test_processes_listen_where_the_others_look_for_them() -> None:
    env = _env("orchestrator")
    assert urlsplit(env["LOCKSTEP_OPENSEARCH_URL"]).port == _ports("opensearch")[0][2]
    assert urlsplit(env["LOCKSTEP_REDIS_URL"]).port == _ports("redis")[0][2]
    for app in ("orchestrator", "serving"):
        command = SERVICES[app]["command"]
        assert command[:3] == ["lockstep", app, "serve"]
        assert command[command.index("--host") + 1] == "0.0.0.0"
        listen = int(command[command.index("--port") + 1])
        url = urlsplit(env[f"LOCKSTEP_{app.upper()}_URL"])
        assert (url.hostname, url.port) == (app, listen)
        assert f"127.0.0.1:{listen}/healthz" in " ".join(SERVICES[app]["healthcheck"]["test"])


def test_indexer_is_the_scheduled_shadow_run() -> None:
    command = SERVICES["indexer"]["command"]
    assert command[:4] == ["lockstep", "index", "run", "--mode"]
    assert command[command.index("--mode") + 1] == "shadow"
    assert command[command.index("--every") + 1] == "5m"
    metrics_port = command[command.index("--metrics-port") + 1]
    assert f"127.0.0.1:{metrics_port}/metrics" in " ".join(SERVICES["indexer"]["healthcheck"]["test"])


def test_redis_persists_with_aof_and_never_evicts() -> None:
    command = SERVICES["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--dir"] == "/data"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert check["test"] and check["test"][0] in ("CMD", "CMD-SHELL")
    assert {"interval", "timeout", "retries"} <= check.keys()
    for dependency, condition in (SERVICES[service].get("depends_on") or {}).items():
        assert dependency in SERVICES
        assert condition == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", APPS)
def test_every_command_is_a_lockstep_command_line_that_parses(service: str) -> None:
    import typer.main

    from cli.main import app

    program, *args = SERVICES[service]["command"]
    assert program == "lockstep"
    # typer ships its own copy of click, so walk the command tree by its methods, not click's classes.
    command = typer.main.get_command(app)
    context = command.context_class(command, info_name=program)
    while hasattr(command, "get_command"):
        name = args.pop(0)
        sub = command.get_command(context, name)
        assert sub is not None, f"{service}: unknown subcommand {name!r}"
        command, context = sub, sub.context_class(sub, info_name=name, parent=context)
    # Parsing the leaf's options strictly raises on an unknown option or a bad value.
    parsed = command.make_context(context.info_name, args, parent=context.parent)
    assert parsed.params, f"{service}: {args} parsed to no options"
