"""Issue 15 item 3: ``--insecure`` is for the named registry only; a private CA needs no --insecure.

Real HTTPS servers on 127.0.0.1: a registry whose certificate a private CA issued, and a token server
and a blob store whose certificates are self-signed (no client may trust them). With the registry
named insecure, the token realm and the redirect target must still be verified: the untrusted servers
must never see a request, let alone the credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import AuthError, RegistryError
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import Reference
from tests.support.tlsservers import Pki, ScriptedTLSServer

SECRET = "tls-scope-secret-0123456789"
BLOB = "sha256:" + "b" * 64


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def untrusted(pki: Pki) -> Iterator[ScriptedTLSServer]:
    """A self-signed server standing for a token realm or object storage elsewhere."""
    cert, key = pki.leaf("untrusted", self_signed=True)
    server = ScriptedTLSServer(cert, key, lambda m, p, h: (200, {}, json.dumps({"token": "t"}).encode()))
    yield server
    server.stop()


def _registry(pki: Pki, realm: str | None, redirect: str | None) -> ScriptedTLSServer:
    cert, key = pki.leaf("registry")

    def answer(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if realm and not headers.get("Authorization", "").startswith("Bearer "):
            return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}, b""
        if redirect and "/blobs/" in path:
            return 307, {"Location": redirect}, b""
        return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'

    return ScriptedTLSServer(cert, key, answer)


def _creds(host: str) -> Credentials:
    return Credentials({host: Credential("user", SECRET, source="test")}, env={})


def test_insecure_does_not_cover_the_token_realm(pki: Pki, untrusted: ScriptedTLSServer) -> None:
    registry = _registry(pki, realm=f"https://{untrusted.host}/token", redirect=None)
    try:
        ref = Reference.parse(f"{registry.host}/team/app:v1")
        client = Client(credentials=_creds(registry.host), insecure=[registry.host], deadline=20)
        with pytest.raises(AuthError) as info:
            client.head_manifest(ref)
        assert "TLS" in info.value.message and untrusted.host in info.value.message
        assert registry.requests, "the registry itself was reached without verification"
        assert untrusted.requests == []  # not one request, so never the credentials
    finally:
        registry.stop()


def test_insecure_does_not_cover_a_redirect_target(pki: Pki, untrusted: ScriptedTLSServer) -> None:
    registry = _registry(pki, realm=None, redirect=f"https://{untrusted.host}/storage/blob")
    try:
        ref = Reference.parse(f"{registry.host}/team/app")
        client = Client(credentials=Credentials.anonymous(), insecure=[registry.host], deadline=20)
        with pytest.raises(RegistryError) as info:
            client.get_blob(ref, BLOB)
        assert "TLS failed" in info.value.message
        assert any("/blobs/" in path for _, path, _ in registry.requests)
        assert untrusted.requests == []
    finally:
        registry.stop()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_private_ca_from_the_environment_needs_no_insecure(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    registry = _registry(pki, realm=None, redirect=None)
    try:
        ref = Reference.parse(f"{registry.host}/team/app:v1")
        with pytest.raises(RegistryError, match="TLS failed"):  # the CA is not trusted by default
            Client(credentials=Credentials.anonymous(), deadline=20).head_manifest(ref)
        monkeypatch.setenv(variable, str(pki.ca_file))
        assert Client(credentials=Credentials.anonymous(), deadline=20).head_manifest(ref) is None
        assert any(path == "/v2/team/app/manifests/v1" for _, path, _ in registry.requests)
    finally:
        registry.stop()


def test_a_ca_file_is_used_and_a_missing_one_is_a_clear_error(pki: Pki, tmp_path: Path) -> None:
    registry = _registry(pki, realm=None, redirect=None)
    try:
        ref = Reference.parse(f"{registry.host}/team/app:v1")
        client = Client(credentials=Credentials.anonymous(), ca_file=pki.ca_file, deadline=20)
        assert client.head_manifest(ref) is None
        with pytest.raises(RegistryError) as info:
            Client(credentials=Credentials.anonymous(), ca_file=tmp_path / "missing.pem")
        assert "does not exist" in info.value.message and info.value.hint and "--ca-file" in info.value.hint
    finally:
        registry.stop()
