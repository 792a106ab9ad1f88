"""The indexer's write cap (LOCKSTEP_INDEXER_MAX_DOCS_PER_SECOND): chunks go out no faster than the cap."""

from __future__ import annotations

import time

import pytest

from contract.settings import Settings
from indexer.bulk import BulkWriter
from indexer.throttle import Throttle
from search.client import build_client
from search.requests import ItemDocument, index_action
from search.templates import install_items_template


@pytest.mark.anyio
async def test_a_capped_writer_writes_everything_no_faster_than_its_cap_and_refuses_a_negative_one(
    settings: Settings, opensearch_client: object
) -> None:
    search = build_client(settings)
    index = f"{settings.index_prefix}-items-capped"
    try:
        await install_items_template(search, settings)
        await search.create_index(index, {}, settings.hnsw_ef_search)
        # 100/s with a bucket of one second: the first 100 go at once, the other 250 take 2.5 s at least.
        writer = BulkWriter(search, 3, "capped write", throttle=Throttle(search, cap=100))
        began = time.monotonic()
        async with writer:
            for start in range(0, 350, 70):  # chunks of 70: each fits the bucket
                await writer.submit(
                    [index_action(index, ItemDocument(f"d{n}", {})) for n in range(start, start + 70)]
                )
        elapsed = time.monotonic() - began
        await search.refresh(index)
        assert writer.written == 350
        assert await search.count(index) == 350
        assert elapsed >= 2.4
        # A chunk larger than the bucket is paid for in pieces, not refused.
        async with BulkWriter(search, 1, "one large chunk", throttle=Throttle(search, cap=100)) as large:
            await large.submit([index_action(index, ItemDocument(f"e{n}", {})) for n in range(150)])
        assert large.written == 150
        with pytest.raises(ValueError, match="docs_per_second=-1"):
            Throttle(search, cap=-1)
    finally:
        await search.aclose()
