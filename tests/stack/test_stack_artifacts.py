"""Download, cache and sha512 verification of Maven artifacts, against a real local HTTP repository."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from stack.artifacts import Artifact, fetch
from stack.errors import StackError

PAYLOAD = b"PK\x03\x04 pretend zip " * 1000
GOOD = hashlib.sha512(PAYLOAD).hexdigest()


@dataclass
class Repository:
    """A directory served over HTTP in Maven layout, counting GETs per path."""

    root: Path
    url: str
    hits: dict[str, int] = field(default_factory=dict)

    def put(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    root = tmp_path / "maven"
    root.mkdir()
    repo = Repository(root=root, url="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            repo.hits[self.path] = repo.hits.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    repo.url = f"http://127.0.0.1:{server.server_address[1]}/maven2"
    repo.root = root / "maven2"
    yield repo
    server.shutdown()
    server.server_close()


def _artifact(published: bool, sha512: str = GOOD) -> Artifact:
    return Artifact(path="org/example/thing/1.0/thing-1.0.zip", sha512=sha512, published_checksum=published)


CONSOLE = Console(quiet=True)
GET_PATH = "/maven2/org/example/thing/1.0/thing-1.0.zip"


def test_download_is_verified_cached_and_reverified(repository: Repository, tmp_path: Path) -> None:
    artifact = _artifact(published=True)
    repository.put(artifact.path, PAYLOAD)
    repository.put(artifact.path + ".sha512", f"{GOOD}  thing-1.0.zip\n".encode())
    downloads = tmp_path / "downloads"
    path = fetch(artifact, repository.url, downloads, CONSOLE)
    assert path == downloads / "thing-1.0.zip"
    assert path.read_bytes() == PAYLOAD
    assert list(downloads.iterdir()) == [path]  # no .part left behind
    assert fetch(artifact, repository.url, downloads, CONSOLE) == path
    assert repository.hits[GET_PATH] == 1  # the second call used the cache

    path.write_bytes(PAYLOAD[:-1] + b"X")  # the cached copy rots
    assert fetch(artifact, repository.url, downloads, CONSOLE).read_bytes() == PAYLOAD
    assert repository.hits[GET_PATH] == 2


def test_a_mismatch_is_retried_once_then_fails_clearly(repository: Repository, tmp_path: Path) -> None:
    artifact = _artifact(published=False)
    repository.put(artifact.path, PAYLOAD + b"tampered")
    downloads = tmp_path / "downloads"
    with pytest.raises(StackError, match="failed sha512 verification twice"):
        fetch(artifact, repository.url, downloads, CONSOLE)
    assert repository.hits[GET_PATH] == 2
    assert list(downloads.iterdir()) == []


def test_a_published_checksum_that_differs_from_the_pin_is_refused(
    repository: Repository, tmp_path: Path
) -> None:
    artifact = _artifact(published=True)
    repository.put(artifact.path, PAYLOAD)
    repository.put(artifact.path + ".sha512", b"0" * 128)
    with pytest.raises(StackError, match="serves a different artifact"):
        fetch(artifact, repository.url, tmp_path / "downloads", CONSOLE)
    assert GET_PATH not in repository.hits


def test_a_missing_published_checksum_is_an_error(repository: Repository, tmp_path: Path) -> None:
    artifact = _artifact(published=True)
    repository.put(artifact.path, PAYLOAD)
    with pytest.raises(StackError, match=r"published checksum .*\.sha512"):
        fetch(artifact, repository.url, tmp_path / "downloads", CONSOLE)
