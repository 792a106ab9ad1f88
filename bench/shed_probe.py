"""A quiet client in a process of its own: one request at a time to /v1/recommend while a crowd presses.

`python -m bench.shed_probe URL KEY SECONDS` prints a JSON list of [status, milliseconds]. The crowd's own
client runs 64 coroutines on one event loop, whose scheduling delays would be counted into every latency
it measures; this probe's one request at a time measures what the server takes to answer (a shed request
above all).
"""

from __future__ import annotations

import json
import sys
import time

import httpx


def main(url: str, key: str, seconds: float) -> None:
    """Send requests back to back for `seconds`; print each one's status and latency."""
    body = {"user_id": "u1", "k": 10, "exclude_seen": False}
    seen: list[tuple[int, float]] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            status = client.post("/v1/recommend", json=body).status_code
            seen.append((status, round((time.perf_counter() - started) * 1000, 3)))
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
