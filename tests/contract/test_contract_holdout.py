"""contract.holdout: gzip told by its magic bytes (not the name), every fault named with the file."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.holdout import HeldOut, HoldoutError, parse_holdout, render_holdout

ids = st.text("abc0123456789_-", min_size=1, max_size=8)


@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=20), st.booleans())
def test_rendered_pairs_read_back(pairs: list[tuple[str, str]], gzipped: bool) -> None:
    rows = parse_holdout(render_holdout(pairs, gzipped), "h")
    assert [(r.user_id, r.book_id) for r in rows] == pairs
    assert [r.line for r in rows] == list(range(2, len(pairs) + 2))


def test_gzip_is_told_by_its_magic_bytes_and_columns_by_their_names() -> None:
    text = b"\xef\xbb\xbfbook_id, user_id ,rating\n10, u1 ,5\n\n11,u2,4\n"  # BOM, spaces, a blank line
    for raw in (text, gzip.compress(text)):
        assert parse_holdout(raw, "any-name.csv") == [HeldOut(2, "u1", "10"), HeldOut(4, "u2", "11")]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"user,book\n1,2\n", "holdout h.csv: needs columns user_id,book_id; header is user,book"),
        (b"", "holdout h.csv: needs columns user_id,book_id; header is \\(empty\\)"),
        (b"user_id,book_id\n", "holdout h.csv: no rows"),
        (b"user_id,book_id\n1,2\n3\n", "holdout h.csv line 3: needs a user_id and a book_id"),
        (b"user_id,book_id\n1,\xff\n", "holdout h.csv: not UTF-8 CSV or valid gzip"),
        (gzip.compress(b"user_id,book_id\n1,2\n")[:-4], "holdout h.csv: not UTF-8 CSV or valid gzip"),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_the_fault(raw: bytes, message: str) -> None:
    with pytest.raises(HoldoutError, match=message):
        parse_holdout(raw, "h.csv")
