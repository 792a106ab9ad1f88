"""`bench instructions` on the real stack: both apps answer under callgrind, and each side is counted."""

from __future__ import annotations

from bench.instructions import run
from contract.settings import Settings


def test_both_sides_are_counted_and_serving_does_more(settings: Settings) -> None:
    result = run(settings)
    counts = result["instructions_per_request"]
    # Each side answered 200 to every request (else the measuring process fails) and was counted apart:
    # a request is hundreds of thousands of instructions, and serving's own code comes on top of the floor's.
    assert counts["floor"] > 100_000
    assert counts["serving"] > counts["floor"]
    assert result["serving_over_floor"] == counts["serving"] - counts["floor"]
