"""read_manifest: a stored manifest round-trips; one from an older contract names the field at fault."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contract.manifest import Buckets, Counts, Manifest, UnreadableManifestError, read_manifest
from contract.versions import Frame


def _manifest() -> Manifest:
    frame = Frame(datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 2, 1, tzinfo=UTC))
    counts = Counts(user=3, item=2)
    return Manifest(
        type_name="als-d8",
        version=frame.version_id,
        seq=1,
        frame_start=frame.start,
        frame_end=frame.end,
        dim=8,
        counts=counts,
        buckets=Buckets.for_counts(counts),
        checksum="0" * 64,
        created_at=frame.end,
    )


def test_a_stored_manifest_reads_back_whole() -> None:
    manifest = _manifest()
    assert read_manifest(manifest.model_dump_json()) == manifest


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.pop("buckets"), "buckets: Field required"),
        (lambda m: m.update(dim="wide"), "dim: Input should be a valid integer"),
    ],
)
def test_a_manifest_of_another_contract_names_the_field(change: object, problem: str) -> None:
    stored = json.loads(_manifest().model_dump_json())
    change(stored)  # type: ignore[operator]
    with pytest.raises(UnreadableManifestError) as caught:
        read_manifest(json.dumps(stored))
    assert str(caught.value).startswith(problem)
