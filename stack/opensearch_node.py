"""OpenSearch nodes of ours: install (zip + k-NN plugin), configure, launch, probe, stop; the single node."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from contract.settings import StackSettings
from stack import artifacts, processes
from stack.errors import StackError
from stack.jdk import Jdk
from stack.layout import KNN_VERSION, OPENSEARCH_VERSION, Layout, OpenSearchNode

KNN_PLUGIN = "opensearch-knn"
# The java process's command line names its home; used to tell our node from a recycled pid.
_PROCESS_MARKER = "org.opensearch.bootstrap.OpenSearch"


@dataclass(frozen=True)
class NodeInfo:
    """What a reachable OpenSearch node says about itself."""

    version: str
    knn_plugin: str | None
    cluster_status: str


def install(settings: StackSettings, layout: Layout, jdk: Jdk, console: Console) -> None:
    """Unzip the distribution and install the k-NN plugin offline, unless a whole install is present."""
    if layout.opensearch_installed_marker.exists():
        return
    server_zip = artifacts.fetch(artifacts.SERVER, settings.maven_repository, layout.downloads, console)
    knn_zip = artifacts.fetch(artifacts.KNN, settings.maven_repository, layout.downloads, console)
    if layout.opensearch_home.exists():  # a half-finished install from an interrupted run
        shutil.rmtree(layout.opensearch_home)
    staging = layout.state_dir / f".unzip-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _unzip(server_zip, staging, console)
    (staging / f"opensearch-{OPENSEARCH_VERSION}").rename(layout.opensearch_home)
    staging.rmdir()
    with console.status(f"installing {KNN_PLUGIN} {KNN_VERSION} (offline)"):
        result = subprocess.run(
            [
                str(layout.opensearch_home / "bin" / "opensearch-plugin"),
                "install",
                "--batch",
                knn_zip.as_uri(),
            ],
            env={**os.environ, "OPENSEARCH_JAVA_HOME": str(jdk.home)},
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise StackError(
            f"installing {knn_zip} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    layout.opensearch_installed_marker.write_text(
        f"opensearch {OPENSEARCH_VERSION}\n{KNN_PLUGIN} {KNN_VERSION}\n"
    )


def _unzip(archive: Path, into: Path, console: Console) -> None:
    # zipfile drops Unix modes; the bin/ scripts need their exec bits back.
    into.mkdir(parents=True)
    columns = (TextColumn("[bold]unzip[/] {task.description}"), BarColumn())
    with zipfile.ZipFile(archive) as bundle, Progress(*columns, console=console, transient=True) as progress:
        members = bundle.infolist()
        task = progress.add_task(archive.name, total=len(members))
        for member in members:
            path = Path(bundle.extract(member, into))
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)
            progress.advance(task)


def write_config(settings: StackSettings, layout: Layout) -> None:
    """opensearch.yml for a single loopback node with our ports and directories (rewritten every start)."""
    node = layout.opensearch_node
    write_yaml(node, {**node_config(node), "discovery.type": "single-node"})


def node_config(node: OpenSearchNode) -> dict[str, object]:
    """The opensearch.yml entries of every node of ours: names, loopback ports, its directories."""
    return {
        "cluster.name": node.cluster_name,
        "node.name": node.name,
        "network.host": "127.0.0.1",
        "http.port": node.http_port,
        "transport.port": node.transport_port,
        "path.data": str(node.data),
        "path.logs": str(node.logs),
        # A nearly full dev disk must not turn indices read-only in the middle of a test run.
        "cluster.routing.allocation.disk.threshold_enabled": False,
    }


def write_yaml(node: OpenSearchNode, config: dict[str, object]) -> None:
    """Write `config` as the node's opensearch.yml."""
    header = "# Written by `lockstep services up` on every start; edit the settings, not this file.\n"
    (node.conf / "opensearch.yml").write_text(header + yaml.safe_dump(config))


def running_pid(node: OpenSearchNode) -> int | None:
    """Pid of the node, from its pid file."""
    return processes.running_pid(node.pid_file, _PROCESS_MARKER)


def launched_pid(node: OpenSearchNode) -> int | None:
    """The live OpenSearch process on the node's config dir; found even before it writes its pid file."""
    conf = f"-Dopensearch.path.conf={node.conf}"
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if conf in cmdline and _PROCESS_MARKER in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            return process.pid
    return None


def launch(settings: StackSettings, layout: Layout, node: OpenSearchNode, heap: str, jdk: Jdk) -> None:
    """Run the launcher of `node` as a daemon (as the OpenSearch user when we are root) from our install."""
    for path in (node.data, node.logs, node.run, node.tmp):
        path.mkdir(parents=True, exist_ok=True)
    node.pid_file.unlink(missing_ok=True)
    launcher = [str(layout.opensearch_home / "bin" / "opensearch"), "-d", "-p", str(node.pid_file)]
    env = {
        "OPENSEARCH_JAVA_HOME": str(jdk.home),
        "OPENSEARCH_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
        "OPENSEARCH_PATH_CONF": str(node.conf),
        # Unset, the launcher starts a JVM of its own to make a new /tmp/opensearch-* on every start.
        "OPENSEARCH_TMPDIR": str(node.tmp),
    }
    if processes.is_root():
        # OpenSearch refuses to run as root: hand it a system user and the directories it writes (the
        # single node's config dir is in the install, a cluster node's in its root).
        processes.ensure_system_user(settings.opensearch_user)
        for tree in (layout.opensearch_home, node.root):
            processes.chown_tree(tree, settings.opensearch_user)
        command = [
            "runuser",
            "-u",
            settings.opensearch_user,
            "--",
            "env",
            *(f"{k}={v}" for k, v in env.items()),
        ]
        command += launcher
    else:
        command = launcher
    with node.console_log.open("ab") as console_log:
        # The daemon inherits these descriptors; a file (not our pipe) so nobody waits on it.
        launched = subprocess.run(
            command,
            cwd=layout.opensearch_home,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=console_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            timeout=120,
            check=False,
        )
    if launched.returncode != 0:
        raise StackError(
            f"the OpenSearch launcher of {node.name} exited {launched.returncode}; see {node.console_log}"
        )


def start(settings: StackSettings, layout: Layout, jdk: Jdk, console: Console, timeout: float = 180) -> int:
    """Start the single node as a daemon and wait for yellow health; returns its pid."""
    node = layout.opensearch_node
    write_config(settings, layout)
    with console.status(f"starting OpenSearch {OPENSEARCH_VERSION} on {node.url} (JDK {jdk.major})"):
        launch(settings, layout, node, settings.opensearch_heap, jdk)
        pid = wait_healthy(node, timeout)
    if pid is None:  # unreachable: require_ours=True returns our pid or raises
        raise StackError(f"OpenSearch on {node.url} is up, but {node.pid_file} names no live process")
    return pid


def wait_healthy(node: OpenSearchNode, timeout: float, require_ours: bool = True) -> int | None:
    """Wait for yellow health on the node; returns its pid (None when not `require_ours`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = processes.read_pid(node.pid_file)
        if require_ours and pid is not None and not processes.alive(pid):
            raise StackError(f"OpenSearch (pid {pid}) exited during startup; see {logs_of(node)}")
        try:
            health = httpx.get(
                f"{node.url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"}
            )
            if health.status_code == 200 and health.json().get("status") in ("yellow", "green"):
                ours = running_pid(node)
                if ours is not None or not require_ours:
                    return ours
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise StackError(
        f"OpenSearch did not reach yellow health on {node.url} within {timeout:.0f}s; see {logs_of(node)}"
    )


def logs_of(node: OpenSearchNode) -> str:
    """Where to look when the node fails."""
    return f"{node.console_log} and {node.log}"


def http_login(settings: StackSettings) -> dict[str, Any]:
    """httpx keyword arguments for a LOCKSTEP_OPENSEARCH_URL cluster: basic auth and the CA that verifies
    it (our own node has neither: the Maven distribution has no security plugin)."""
    if settings.opensearch_url is None:
        return {}
    options: dict[str, Any] = {}
    if settings.opensearch_username is not None:
        password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        options["auth"] = (settings.opensearch_username, password)
    if settings.opensearch_ca_file is not None:
        options["verify"] = ssl.create_default_context(cafile=str(settings.opensearch_ca_file))
    elif not settings.opensearch_verify_certs:
        options["verify"] = False
    return options


def probe(url: str, timeout: float = 5, login: dict[str, Any] | None = None) -> NodeInfo | None:
    """Version, k-NN plugin and health of the node at `url` (with `login`, see http_login); None when it
    does not answer, or refuses the login."""
    try:
        with httpx.Client(base_url=url, timeout=timeout, **(login or {})) as client:
            root = client.get("/")
            root.raise_for_status()
            plugins = client.get("/_cat/plugins", params={"format": "json"})
            plugins.raise_for_status()
            health = client.get("/_cluster/health")
            health.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None
    knn = [f"{p['component']} {p['version']}" for p in plugins.json() if p.get("component") == KNN_PLUGIN]
    return NodeInfo(
        version=str(root.json()["version"]["number"]),
        knn_plugin=knn[0] if knn else None,
        cluster_status=str(health.json().get("status")),
    )


def stop(node: OpenSearchNode) -> int | None:
    """Stop the node (its pid file's, or a process on its config dir not yet in one); returns its pid."""
    pid = running_pid(node) or launched_pid(node)
    if pid is not None:
        processes.terminate(pid, grace_seconds=60)
    node.pid_file.unlink(missing_ok=True)
    return pid
