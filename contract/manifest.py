"""The manifest: written last, it is what makes a version exist."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.keys import Kind
from contract.vectors import buckets_for
from contract.versions import Frame


class Counts(BaseModel):
    """How many vectors of each kind a version holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: int = Field(0, ge=0)
    item: int = Field(0, ge=0)
    attr: int = Field(0, ge=0)

    def of(self, kind: Kind) -> int:
        """The vector count of one kind."""
        count: int = getattr(self, kind.value)
        return count


class Buckets(BaseModel):
    """Over how many bucket hashes each kind's vectors are spread (`Keys.vectors`, `vectors.bucket_of`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: int = Field(1, ge=1)
    item: int = Field(1, ge=1)
    attr: int = Field(1, ge=1)

    @classmethod
    def for_counts(cls, counts: Counts) -> Buckets:
        """The bucket counts a publisher chooses for these vector counts (`vectors.buckets_for`)."""
        return cls(
            user=buckets_for(counts.user), item=buckets_for(counts.item), attr=buckets_for(counts.attr)
        )

    def of(self, kind: Kind) -> int:
        """The bucket count of one kind."""
        count: int = getattr(self, kind.value)
        return count


class Manifest(BaseModel):
    """Everything a reader needs to trust a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: str
    version: str
    seq: int = Field(ge=1, description="Publish sequence of the type, assigned when the manifest is written.")
    frame_start: datetime
    frame_end: datetime
    dim: int = Field(ge=1)
    counts: Counts
    buckets: Buckets = Field(description="Bucket hashes per kind; readers need it to find a vector's key.")
    checksum: str = Field(description="sha256 over every (kind, id, bytes) record in sorted order.")
    created_at: datetime
    trainer: dict[str, str] = Field(
        default_factory=dict, description="Who trained it, with which parameters."
    )

    @property
    def frame(self) -> Frame:
        """The training frame."""
        return Frame(self.frame_start, self.frame_end)

    @property
    def order(self) -> tuple[datetime, int]:
        """Sort key: frame end, then publish sequence."""
        return (self.frame_end, self.seq)


class UnreadableManifestError(ValueError):
    """A stored manifest that does not match this contract (an older Lockstep wrote it)."""


def read_manifest(raw: bytes | str) -> Manifest:
    """A stored manifest; UnreadableManifestError names the first field that does not match the contract.

    Every reader treats such a version as not published, like one whose manifest is missing.
    """
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "manifest"
        raise UnreadableManifestError(f"{where}: {error['msg']}") from exc
