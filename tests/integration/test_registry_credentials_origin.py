"""Issue 21 item 5: a registry's credentials go to its own origin only (docs/security.md §4).

A real distribution registry with a password (alice / s3cret-pw) sits behind two loopback origins
(``tests/support/crossorigin.py``): its front door, whose answers name URLs on the other origin
(upload locations, next pages), and that other origin, which has its own access to the registry, as
blob storage does. The uploads and pages must work through it, and it must never see the password.
A registry with TLS that names plain-HTTP URLs (a host name resolved to 127.0.0.1 in this process,
with a certificate from a private CA) is not followed at all.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.errors import OriginError
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Manifest
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import attach, list_referrers
from tests.support.crossorigin import Forwarder
from tests.support.httpserver import LoopbackServer
from tests.support.layouts import build_image
from tests.support.referrersapi import ReferrersApi
from tests.support.registries import AuthRegistry, Factory
from tests.support.tlsservers import Pki, ScriptedTLSServer

USER, PASSWORD = "alice", "s3cret-pw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
NAME = "registry.test"  # not loopback for the client: its name resolves to 127.0.0.1 only here


@pytest.fixture
def registry(registry_factory: Factory) -> AuthRegistry:
    return registry_factory.htpasswd(USER, PASSWORD)


@pytest.fixture
def origins(registry: AuthRegistry) -> Iterator[Callable[[str], tuple[Forwarder, Forwarder]]]:
    """``make(upstream)``: the front door and the other origin, both in front of ``upstream``."""
    started: list[Forwarder] = []

    def make(upstream: str) -> tuple[Forwarder, Forwarder]:
        other = Forwarder(upstream, authorization=BASIC).start()
        front = Forwarder(upstream, send_on_to=other.url).start()
        started.extend([other, front])
        return front, other

    yield make
    for server in started:
        server.stop()


def _client(host: str, **kwargs: Any) -> Client:
    return Client(credentials=Credentials({host: Credential(USER, PASSWORD)}, env={}), **kwargs)


def _stored(registry: AuthRegistry, digest: str) -> bool:
    answer = requests.head(f"{registry.url}/v2/team/app/blobs/{digest}", auth=registry.auth, timeout=30)
    return answer.status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_an_upload_on_another_origin_works_without_the_password(
    registry: AuthRegistry, origins: Callable[[str], tuple[Forwarder, Forwarder]], chunked: bool
) -> None:
    front, other = origins(registry.url)
    limits = {"monolithic_limit": 1000, "chunk_size": 4096} if chunked else {}
    data = b"layer bytes " * 1000
    with _client(front.host, **limits) as client:
        digest = client.upload_blob(Reference.parse(f"{front.host}/team/app"), data)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest() and _stored(registry, digest)
    uploads = [r for r in other.received if r.method in ("PUT", "PATCH")]
    assert uploads, "the upload went to the other origin"
    if chunked:
        assert any(r.method == "PATCH" for r in uploads)
    assert other.requests_with_authorization() == []  # never alice's password, nor any token
    assert front.requests_with_authorization(), "the registry itself got the credentials"


def _artifact(client: Client, ref: Reference, subject: Descriptor, n: int) -> Manifest:
    blob = b'{"n": %d}' % n
    layer = Descriptor("application/vnd.test+json", client.upload_blob(ref, blob), len(blob))
    empty = Descriptor("application/vnd.oci.empty.v1+json", client.upload_blob(ref, b"{}"), 2)
    return Manifest(config=empty, layers=[layer], subject=subject, artifact_type="application/vnd.test")


def test_a_next_page_on_another_origin_works_without_the_password(
    registry: AuthRegistry,
    origins: Callable[[str], tuple[Forwarder, Forwarder]],
    tmp_path: Path,
) -> None:
    with ReferrersApi(registry.url, page_size=2) as api:
        front, other = origins(api.url)
        ref = Reference.parse(f"{front.host}/team/app:v1")
        layout, top = build_image(tmp_path / "layout")
        with _client(front.host) as client:
            client.push_layout(layout, top, ref)
            attached = [attach(client, ref, _artifact(client, ref, top, n)) for n in range(5)]
            other.received.clear()
            listed = list_referrers(client, ref, top.digest)
    assert [d.digest for d in listed] == [d.digest for d in attached]
    pages = [r for r in other.received if "/referrers/" in r.path]
    assert len(pages) == 2  # pages 2 and 3 came from the other origin
    assert other.requests_with_authorization() == []


class _Recorder(LoopbackServer):
    """A plain-HTTP server that answers 401 with a Bearer challenge naming itself, and records."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str | None]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                recorder.seen.append((self.command, self.path, self.headers.get("Authorization")))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="{recorder.url}/token",service="x"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _any  # noqa: N815

        return Handler


def test_a_challenge_from_another_origin_gets_no_credentials(registry: AuthRegistry) -> None:
    """Storage that answers 401 with a token realm of its own gets no password (not even for a token)."""
    with _Recorder() as elsewhere:
        front = Forwarder(registry.url, send_on_to=elsewhere.url).start()
        try:
            with _client(front.host, deadline=20) as client, pytest.raises(Exception) as info:
                client.upload_blob(Reference.parse(f"{front.host}/team/app"), b"some bytes")
        finally:
            front.stop()
    assert elsewhere.seen, "the upload was sent on to the other origin"
    assert [auth for _, _, auth in elsewhere.seen if auth] == []
    assert not [path for _, path, _ in elsewhere.seen if path.startswith("/token")]
    assert "401" in str(info.value)


# -- a registry with TLS that names plain-HTTP URLs ----------------------------------------------------


@pytest.fixture
def named(monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry.test`` resolves to 127.0.0.1 in this process (the client treats it as a remote host)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("where", ["upload", "redirect", "next-page"])
def test_a_plain_http_url_named_by_a_tls_registry_is_refused(named: None, tmp_path: Path, where: str) -> None:
    with _Recorder() as plain:
        pki = Pki(tmp_path)
        cert, key = pki.leaf("registry", dns=NAME)

        def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            if headers.get("Authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
            if method == "HEAD":
                return 404, {}, b""
            if path.endswith("/blobs/uploads/"):
                return 202, {"Location": f"{plain.url}/v2/team/app/blobs/uploads/u1"}, b""
            if "/blobs/sha256:" in path:
                return 307, {"Location": f"{plain.url}/bucket/blob"}, b""
            link = {"Link": f'<{plain.url}/v2/team/app/tags/list?last=a>; rel="next"'}
            return 200, {"Content-Type": "application/json", **link}, b'{"tags": ["a"]}'

        server = ScriptedTLSServer(cert, key, answer)
        host = f"{NAME}:{server.host.rsplit(':', 1)[1]}"
        ref = Reference.parse(f"{host}/team/app")
        try:
            with (
                _client(host, ca_file=pki.ca_file, deadline=20) as client,
                pytest.raises(OriginError) as info,
            ):
                if where == "upload":
                    client.upload_blob(ref, b"bytes")
                elif where == "redirect":
                    client.get_blob(ref, "sha256:" + "a" * 64)
                else:
                    client.list_tags(ref)
        finally:
            server.stop()
    assert f"sent the client on to {plain.url} (" in info.value.message
    assert "is not followed" in info.value.message and "--insecure" in (info.value.hint or "")
    assert plain.seen == []  # not one request over plain HTTP
    assert any(h.get("Authorization") == BASIC for _, _, h in server.requests)  # the registry had them
