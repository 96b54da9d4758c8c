"""Issue 15 item 4: credentials go to a token realm only over TLS, and only on the registry's scheme.

The realm comes from the registry's WWW-Authenticate header, so the registry (or anything that can
rewrite its answers) chooses where the client sends its Basic credentials. A recording ``fetch``
stands in for the network: what matters is whether the Authenticator asks it at all.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pipeline.errors import AuthError
from pipeline.registry.auth import Authenticator, parse_challenges
from pipeline.registry.credentials import Credential, Credentials

SECRET = "realm-secret-0123456789"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append((method, url, kwargs))
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"token": "tok", "expires_in": 300}'
        return response


def _auth(host: str, *, identity: bool = False) -> tuple[Authenticator, Recorder]:
    cred = Credential(identity_token=SECRET) if identity else Credential("user", SECRET)
    recorder = Recorder()
    return Authenticator(Credentials({host: cred}, env={}), recorder), recorder


def _challenge(realm: str) -> list[Any]:
    return parse_challenges(f'Bearer realm="{realm}",service="svc"')


@pytest.mark.parametrize("identity", [False, True])
@pytest.mark.parametrize(
    ("host", "realm"),
    [
        ("registry.example.com", "http://auth.example.com/token"),  # plain HTTP on the network
        ("registry.example.com", "http://127.0.0.1:5001/token"),  # a remote registry sending us to loopback
        ("127.0.0.1:5000", "http://auth.example.com/token"),  # loopback registry, realm elsewhere in clear
        ("registry.localhost:5000", "http://registry.localhost:5001/token"),  # *.localhost is no loopback
    ],
)
def test_a_plain_http_realm_is_refused(host: str, realm: str, identity: bool) -> None:
    auth, recorder = _auth(host, identity=identity)
    with pytest.raises(AuthError) as info:
        auth.challenged(host, host, ["repository:a:pull"], _challenge(realm), None)
    assert "plain-HTTP token realm" in info.value.message and "only over TLS" in info.value.message
    assert recorder.calls == []
    assert SECRET not in str(info.value)


def test_credentials_never_go_to_a_realm_on_another_scheme() -> None:
    host = "127.0.0.1:5000"
    auth, recorder = _auth(host)
    auth.registry_scheme(host, "https")  # a loopback registry spoken to over TLS
    with pytest.raises(AuthError) as info:
        auth.challenged(host, host, ["repository:a:pull"], _challenge("http://127.0.0.1:5001/token"), None)
    assert "another scheme" in info.value.message and recorder.calls == []


@pytest.mark.parametrize(
    "realm", ["ftp://auth.example.com/t", "https://user:pw@auth.example.com/t", "/token", ""]
)
def test_an_unusable_realm_is_refused(realm: str) -> None:
    auth, recorder = _auth("registry.example.com")
    with pytest.raises(AuthError, match="without a usable realm"):
        auth.challenged("registry.example.com", "registry.example.com", ["s"], _challenge(realm), None)
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("host", "realm"),
    [
        ("registry.example.com", "https://auth.example.com/token"),  # Docker Hub's shape
        ("127.0.0.1:5000", "http://127.0.0.1:5001/token"),  # the local registry and token server
        ("localhost:5000", "http://[::1]:5001/token"),
    ],
)
def test_tls_realms_and_all_loopback_realms_get_the_credentials(host: str, realm: str) -> None:
    auth, recorder = _auth(host)
    header = auth.challenged(host, host, ["repository:a:pull"], _challenge(realm), None)
    assert header == "Bearer tok"
    ((method, url, kwargs),) = recorder.calls
    assert (method, url) == ("GET", realm) and kwargs["headers"]["Authorization"].startswith("Basic ")
