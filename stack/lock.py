"""One lock per state dir, so concurrent `up`/`down` calls (parallel test sessions) take turns."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from stack.layout import Layout


@contextmanager
def state_lock(layout: Layout) -> Iterator[None]:
    """Hold the state dir's lock: one caller starts or stops, the others then find the result."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
