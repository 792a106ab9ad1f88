"""Convert engine scores back to the model's similarity, so scores of any path can be compared and merged.

The model similarity is "higher is more similar" for every type:
dot: the inner product q.x;  cosine: cos(q, x);  l2: the negated squared distance -|q-x|^2.

What OpenSearch 3.6 returns, from the lucene k-NN query and the knn_score script alike (verified on the
real server by tests/search/test_scores.py):
- innerproduct: ip + 1 when ip >= 0, else 1 / (1 - ip);
- cosinesimil: (1 + cos) / 2;
- l2: 1 / (1 + |q-x|^2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from contract.types import Similarity


def to_similarity(similarity: Similarity, score: float) -> float:
    """The model similarity a returned score stands for."""
    # Only cosine can reach 0 (at cos = -1); dot and l2 scores are strictly positive.
    if score < 0 or (score == 0 and similarity is not Similarity.COSINE):
        raise ValueError(f"OpenSearch k-NN scores of {similarity.value} are positive, got {score!r}")
    if similarity is Similarity.DOT:
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    if similarity is Similarity.COSINE:
        return 2.0 * score - 1.0
    return 1.0 - 1.0 / score


def to_score(similarity: Similarity, value: float) -> float:
    """The score OpenSearch returns for a model similarity (inverse of `to_similarity`)."""
    if similarity is Similarity.DOT:
        return value + 1.0 if value >= 0 else 1.0 / (1.0 - value)
    if similarity is Similarity.COSINE:
        return (1.0 + value) / 2.0
    if value > 0:
        raise ValueError(f"an l2 similarity is a negated squared distance (<= 0), got {value!r}")
    return 1.0 / (1.0 - value)


def model_similarity(similarity: Similarity, query: Sequence[float], item: Sequence[float]) -> float:
    """The model similarity computed directly (the reference the conversions are tested against)."""
    if len(query) != len(item):
        raise ValueError(f"vectors differ in dimension: {len(query)} vs {len(item)}")
    dot = math.fsum(a * b for a, b in zip(query, item, strict=True))
    if similarity is Similarity.DOT:
        return dot
    if similarity is Similarity.COSINE:
        norm = math.sqrt(math.fsum(a * a for a in query)) * math.sqrt(math.fsum(b * b for b in item))
        return dot / norm if norm else 0.0
    return -math.fsum((a - b) ** 2 for a, b in zip(query, item, strict=True))
