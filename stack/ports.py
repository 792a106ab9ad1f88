"""Whether a loopback port is free for a server of ours, checked before starting it."""

from __future__ import annotations

import socket

from stack.errors import StackError


def ensure_free(port: int, who: str, setting: str) -> None:
    """Raise, naming `who` and the setting the port comes from, when something already listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers do: a port whose last connection lingers in TIME_WAIT is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(
                f"{who} cannot start: 127.0.0.1:{port} is taken by another process ({exc.strerror}); "
                f"stop that process or move the ports with {setting}"
            ) from exc
