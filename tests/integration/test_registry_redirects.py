"""Blob GETs redirected to storage on another host (as registries do with S3-like storage).

distribution 2.8 with filesystem storage never redirects, so a small HTTP server stands in for the
registry's front door here: it demands Basic auth and answers blob GETs with a redirect to a second
server (the "storage"), which records the headers it got.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RegistryError
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import Reference

PASSWORD = "redirect-test-password"
DATA = b"blob content served from storage" * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


class _Servers:
    def __init__(self) -> None:
        self.storage_headers: list[dict[str, str]] = []
        self.front_paths: list[str] = []
        self.corrupt = False
        self.front = ThreadingHTTPServer(("127.0.0.1", 0), self._front_handler())
        self.storage = ThreadingHTTPServer(("127.0.0.1", 0), self._storage_handler())
        for server in (self.front, self.storage):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def front_host(self) -> str:
        return f"127.0.0.1:{self.front.server_address[1]}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.storage.server_address[1]}"

    def close(self) -> None:
        for server in (self.front, self.storage):
            server.shutdown()
            server.server_close()

    def _front_handler(self) -> type[BaseHTTPRequestHandler]:
        servers = self
        expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                servers.front_paths.append(self.path)
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"WWW-Authenticate": 'Basic realm="front"'})
                elif self.path.endswith(f"/blobs/{DIGEST}"):
                    # first a relative redirect on the same host, then off to storage
                    self._reply(307, {"Location": f"/v2/team/app/moved/{DIGEST}"})
                elif self.path.endswith(f"/moved/{DIGEST}"):
                    self._reply(307, {"Location": f"{servers.storage_url}/bucket/{DIGEST[7:]}?X-Sig=abc"})
                else:
                    self._reply(404, {})

        return Front

    def _storage_handler(self) -> type[BaseHTTPRequestHandler]:
        servers = self

        class Storage(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                servers.storage_headers.append({k.lower(): v for k, v in self.headers.items()})
                body = DATA[:-1] + b"!" if servers.corrupt else DATA
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Storage


@pytest.fixture
def servers() -> Iterator[_Servers]:
    servers = _Servers()
    try:
        yield servers
    finally:
        servers.close()


def test_no_authorization_to_another_host(servers: _Servers, tmp_path: Path) -> None:
    client = Client(credentials=Credentials({servers.front_host: Credential("user", PASSWORD)}, env={}))
    ref = Reference.parse(f"{servers.front_host}/team/app")
    assert client.get_blob(ref, DIGEST) == DATA
    client.download_blob(ref, DIGEST, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == DATA
    assert len(servers.storage_headers) == 2
    assert all("authorization" not in headers for headers in servers.storage_headers)
    assert any(path.endswith(f"/moved/{DIGEST}") for path in servers.front_paths)  # relative Location


def test_corrupt_blob_is_refused(servers: _Servers, tmp_path: Path) -> None:
    servers.corrupt = True
    client = Client(credentials=Credentials({servers.front_host: Credential("user", PASSWORD)}, env={}))
    ref = Reference.parse(f"{servers.front_host}/team/app")
    with pytest.raises(RegistryError, match="corrupt"):
        client.get_blob(ref, DIGEST)
    with pytest.raises(RegistryError, match="corrupt"):
        client.download_blob(ref, DIGEST, tmp_path / "blob")
    assert not (tmp_path / "blob").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
