"""Id patterns take the whole text: Python's `$` would also match before a final newline."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.types import NAMESPACE, TYPE_NAME, EmbeddingType, Family, Similarity
from contract.versions import VERSION_ID, Frame, is_version_id
from contract.wire import WeightedAttribute

VERSION = "20170101T000000Z-20170201T000000Z"


@pytest.mark.parametrize(
    ("pattern", "good"), [(TYPE_NAME, "als-d8"), (NAMESPACE, "tag"), (VERSION_ID, VERSION)]
)
def test_a_trailing_newline_never_matches(pattern: object, good: str) -> None:
    assert pattern.match(good) and pattern.fullmatch(good)  # type: ignore[attr-defined]
    assert not pattern.match(good + "\n")  # type: ignore[attr-defined]


def test_validators_refuse_a_trailing_newline() -> None:
    assert is_version_id(VERSION) and not is_version_id(VERSION + "\n")
    with pytest.raises(ValueError, match="version id"):
        Frame.from_version_id(VERSION + "\n")
    with pytest.raises(ValidationError, match="type name"):
        EmbeddingType(name="als-d8\n", family=Family.DIRECT_DIRECT, dim=8, similarity=Similarity.DOT)
    with pytest.raises(ValidationError, match="namespace"):
        EmbeddingType(
            name="t",
            family=Family.INDIRECT_DIRECT,
            dim=8,
            similarity=Similarity.DOT,
            attribute_namespaces=("tag\n",),
        )
    with pytest.raises(ValidationError, match="attribute id"):
        WeightedAttribute(id="item:1\n")
