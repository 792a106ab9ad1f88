"""A throwaway CA and a server certificate for 127.0.0.1 (openssl), and a TLS + basic-auth proxy.

The Maven OpenSearch distribution has no security plugin, so the secured OpenSearch our clients are tested
against is the real node behind `SecuredProxy`: TLS with our CA's certificate, HTTP basic auth, then every
request forwarded to the node as is.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA that signed the server certificate, and the server's certificate and key."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA and a certificate for IP 127.0.0.1 signed by it (a failure if openssl is missing)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed (Debian package openssl)"
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, request = directory / "server.pem", directory / "server.key", directory / "server.csr"
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "1"]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1", "-extfile", extensions]
    for command in (
        ["req", "-x509", *new_key, "-keyout", ca_key, "-out", ca, "-subj", "/CN=lockstep test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", request, *sign, "-out", cert],
    ):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True, timeout=60)
    for path in (ca, cert, key):
        path.chmod(0o644)  # a Redis started as another user reads them
    return Certificates(ca, cert, key)


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SecuredProxy:
    """HTTPS with basic auth on a free port, forwarding to `upstream` (http://host:port); its own thread."""

    def __init__(self, upstream: str, certificates: Certificates, user: str, password: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.refused = 0
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificates.cert, certificates.key)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        return f"https://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), self.expected.encode()):
            self.refused += 1
            return web.json_response(
                {"error": {"type": "security_exception"}, "status": 401},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="lockstep-test"'},
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "authorization")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.rel_url.path_qs,
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
            return web.Response(body=body, status=answer.status, headers=kept)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._context)
        self._loop.run_until_complete(site.start())
        self._started.set()
        self._loop.run_forever()

    def start(self) -> SecuredProxy:
        """Listen (returns once the socket accepts connections)."""
        self._thread.start()
        assert self._started.wait(30), "the proxy did not start"
        return self

    def stop(self) -> None:
        """Close the listener and the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
