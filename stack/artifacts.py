"""The OpenSearch and k-NN zips: downloaded once into the cache, verified by sha512 on every use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from stack.errors import StackError
from stack.layout import KNN_VERSION, OPENSEARCH_VERSION

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """One file of a Maven repository, with the sha512 we pinned after checking it by hand."""

    path: str
    sha512: str
    # The k-NN zip has no .sha512/.sha1 beside it on Maven Central, so only our pin guards it.
    published_checksum: bool

    @property
    def filename(self) -> str:
        """The file's name in the downloads cache."""
        return self.path.rsplit("/", 1)[-1]

    def url(self, repository: str) -> str:
        """Its URL in `repository`."""
        return f"{repository.rstrip('/')}/{self.path}"


SERVER = Artifact(
    path=(
        "org/opensearch/distribution/integ-test-zip/opensearch/"
        f"{OPENSEARCH_VERSION}/opensearch-{OPENSEARCH_VERSION}.zip"
    ),
    sha512=(
        "b82066a97902879c47e26608848d068c09e74d2128edee2802e622867abd451d"
        "34a366acc6519d0b40fc97acc89d61c5bb330ab8b2086cf6ffa0f9fe4b9acaa4"
    ),
    published_checksum=True,
)
KNN = Artifact(
    path=f"org/opensearch/plugin/opensearch-knn/{KNN_VERSION}/opensearch-knn-{KNN_VERSION}.zip",
    sha512=(
        "fc5152c44729e636e0efc31c97f339f18bc8401376f1ac0a404016b654ff5372"
        "c2af01b37d537f234e9c132c0c39d576f02afc5da2bc0c38fa0c82c2cb47bb42"
    ),
    published_checksum=False,
)


def sha512_of(path: Path) -> str:
    """Hex sha512 of a file, read in chunks."""
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(artifact: Artifact, repository: str, downloads: Path, console: Console) -> Path:
    """The verified local copy of `artifact`, downloading it when missing or corrupt (one retry)."""
    target = downloads / artifact.filename
    if target.exists():
        if sha512_of(target) == artifact.sha512:
            return target
        console.print(f"[yellow]{target} does not match its pinned sha512; downloading it again[/]")
        target.unlink()
    downloads.mkdir(parents=True, exist_ok=True)
    url = artifact.url(repository)
    if artifact.published_checksum:
        published = _published_sha512(url)
        if published != artifact.sha512:
            raise StackError(
                f"{url}.sha512 says {published[:16]}…, but we pinned {artifact.sha512[:16]}…: "
                "the repository serves a different artifact than the one we tested; refusing it"
            )
    part = target.with_name(target.name + ".part")
    for attempt in (1, 2):
        _download(url, part, console)
        digest = sha512_of(part)
        if digest == artifact.sha512:
            part.replace(target)
            return target
        part.unlink()
        console.print(f"[yellow]{url}: sha512 {digest[:16]}… is not the pinned {artifact.sha512[:16]}…[/]")
        if attempt == 2:
            break
    raise StackError(
        f"{url} failed sha512 verification twice (expected {artifact.sha512}); "
        f"check settings.maven_repository / LOCKSTEP_MAVEN_REPOSITORY and your network"
    )


def _published_sha512(url: str) -> str:
    try:
        response = httpx.get(f"{url}.sha512", follow_redirects=True, timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise StackError(f"cannot read the published checksum {url}.sha512: {exc}") from exc
    return response.text.split()[0].strip().lower()


def _download(url: str, part: Path, console: Console) -> None:
    columns = (
        TextColumn("[bold]download[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    try:
        with (
            httpx.stream("GET", url, follow_redirects=True, timeout=60) as response,
            Progress(*columns, console=console, transient=True) as progress,
        ):
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            task = progress.add_task(url.rsplit("/", 1)[-1], total=total)
            with part.open("wb") as handle:
                for chunk in response.iter_bytes(_CHUNK):
                    handle.write(chunk)
                    progress.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise StackError(f"download of {url} failed: {exc}") from exc
