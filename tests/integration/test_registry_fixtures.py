"""The registry test fixtures themselves, checked with plain `requests` against the real registry."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
import requests

from pipeline.services.distribution import LocalRegistry
from tests.support.faultproxy import FaultProxy, retry_after_date
from tests.support.registries import AuthRegistry, Factory

REPO = "team/thing"


def _push_blob(url: str, data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    """Monolithic upload: POST then PUT with the digest. Returns the PUT's response."""
    headers = dict(headers or {})
    start = requests.post(f"{url}/v2/{REPO}/blobs/uploads/", headers=headers, timeout=30)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    if location.startswith("/"):
        location = url + location
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sep = "&" if "?" in location else "?"
    return requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
        timeout=30,
    )


def _bearer(reg: AuthRegistry, scope: str, auth: tuple[str, str] | None = None) -> requests.Response:
    return requests.get(
        reg.realm or "",
        params={"service": reg.service, "scope": scope},
        auth=auth,
        timeout=10,
    )


def test_anonymous_registry_accepts_a_blob(registry: LocalRegistry) -> None:
    assert registry.url == f"http://{registry.host}"
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 200
    put = _push_blob(registry.url, b"hello")
    assert put.status_code == 201, put.text
    digest = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    head = requests.head(f"{registry.url}/v2/{REPO}/blobs/{digest}", timeout=5)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest


def test_registry_stops_and_frees_its_port(registry_factory: Factory) -> None:
    reg = registry_factory.anonymous()
    pid = reg.pid
    assert pid is not None
    reg.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{reg.url}/v2/", timeout=2)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", reg.port))


def test_htpasswd_registry_refuses_a_bad_password(registry_htpasswd: AuthRegistry) -> None:
    reg = registry_htpasswd
    anon = requests.get(f"{reg.url}/v2/", timeout=5)
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"].startswith("Basic ")
    assert requests.get(f"{reg.url}/v2/", auth=(reg.username, "wrong"), timeout=5).status_code == 401
    assert requests.get(f"{reg.url}/v2/", auth=reg.auth, timeout=5).status_code == 200
    # The password is not in the htpasswd file in clear.
    assert reg.password not in (reg.registry.root / "htpasswd").read_text()


def test_token_flow_issues_jwts_the_registry_accepts(token_registry: AuthRegistry) -> None:
    reg = token_registry
    assert reg.tokens is not None
    challenge = requests.get(f"{reg.url}/v2/{REPO}/tags/list", timeout=5)
    assert challenge.status_code == 401
    header = challenge.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    assert f'realm="{reg.realm}"' in header and f'service="{reg.service}"' in header
    assert f"repository:{REPO}:pull" in header

    # Wrong password: refused by the token server.
    assert _bearer(reg, f"repository:{REPO}:pull,push", ("nobody", "wrong")).status_code == 401

    answer = _bearer(reg, f"repository:{REPO}:pull,push", reg.auth)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": REPO, "actions": ["pull", "push"]}]
    header_fields = jwt.get_unverified_header(body["token"])
    assert header_fields["alg"] == "RS256" and header_fields["kid"] and header_fields["x5c"]

    bearer = {"Authorization": f"Bearer {body['token']}"}
    put = _push_blob(reg.url, b"token-flow", bearer)
    assert put.status_code == 201, put.text

    # A forged token (signed by another key) is refused.
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": header_fields["kid"]})
    refused = requests.get(
        f"{reg.url}/v2/{REPO}/tags/list", headers={"Authorization": f"Bearer {forged}"}, timeout=5
    )
    assert refused.status_code == 401


def test_token_scopes_are_separate_parameters(token_registry: AuthRegistry) -> None:
    reg = token_registry
    assert reg.tokens is not None
    answer = requests.get(
        reg.realm or "",
        params=[
            ("service", reg.service),
            ("scope", f"repository:{REPO}:pull,push"),
            ("scope", "repository:other/base:pull"),
        ],
        auth=reg.auth,
        timeout=10,
    )
    claims = jwt.decode(answer.json()["token"], options={"verify_signature": False})
    assert {a["name"]: a["actions"] for a in claims["access"]} == {
        REPO: ["pull", "push"],
        "other/base": ["pull"],
    }
    assert reg.tokens.requests[-1].scopes == [f"repository:{REPO}:pull,push", "repository:other/base:pull"]


def test_anonymous_token_grants_nothing_unless_told(token_registry: AuthRegistry) -> None:
    reg = token_registry
    assert reg.tokens is not None
    claims = jwt.decode(
        _bearer(reg, f"repository:{REPO}:pull").json()["token"], options={"verify_signature": False}
    )
    assert claims["access"] == [{"type": "repository", "name": REPO, "actions": []}]
    reg.tokens.anonymous_pull = True
    token = _bearer(reg, f"repository:{REPO}:pull,push").json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull"]
    listed = requests.get(
        f"{reg.url}/v2/{REPO}/tags/list", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert listed.status_code == 404  # authorized; the repository just does not exist yet


def test_es256_tokens_and_access_token_field(registry_factory: Factory) -> None:
    reg = registry_factory.token(algorithm="ES256")
    assert reg.tokens is not None
    reg.tokens.token_field = "access_token"
    body = _bearer(reg, f"repository:{REPO}:pull,push", reg.auth).json()
    assert "token" not in body
    put = _push_blob(reg.url, b"es256", {"Authorization": f"Bearer {body['access_token']}"})
    assert put.status_code == 201, put.text


def test_short_lived_token_expires(registry_factory: Factory) -> None:
    # exp is in whole seconds: a token of 3 s is good for 2 to 3 s, time for the first request on a busy
    # machine (1 s was not: 401 at once, once in a loaded run)
    reg = registry_factory.token(lifetime=3)
    assert reg.tokens is not None
    body = _bearer(reg, f"repository:{REPO}:pull,push", reg.auth).json()
    assert body["expires_in"] == 3
    headers = {"Authorization": f"Bearer {body['token']}"}
    url = f"{reg.url}/v2/{REPO}/blobs/uploads/"
    assert requests.post(url, headers=headers, timeout=5).status_code == 202
    time.sleep(3.2)
    expired = requests.post(url, headers=headers, timeout=5)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]


def test_proxy_forwards_and_counts_bytes(fault_proxy: FaultProxy) -> None:
    data = b"x" * 100_000
    put = _push_blob(fault_proxy.url, data)
    assert put.status_code == 201, put.text
    # The registry's absolute Location pointed back at the proxy: everything went through it.
    assert fault_proxy.count("POST", r"/blobs/uploads/$") == 1
    assert fault_proxy.count("PUT") == 1
    assert fault_proxy.bytes_uploaded() == len(data)
    assert fault_proxy.bytes_received("PUT") == len(data)
    table = fault_proxy.by_method_path()
    assert sum(n for n, _ in table.values()) == 2


def test_proxy_answers_500_n_times(fault_proxy: FaultProxy) -> None:
    fault = fault_proxy.fail(500, times=2, method="GET", path=r"^/v2/$")
    statuses = [requests.get(f"{fault_proxy.url}/v2/", timeout=5).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert fault.fired == 2


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_proxy_throttles_with_retry_after(fault_proxy: FaultProxy, form: str) -> None:
    # The date is made when the test runs (made at collection it would be past by then, and its test id
    # would differ between pytest-xdist's workers, which then refuse to run).
    retry_after = "3" if form == "seconds" else retry_after_date(3)
    fault_proxy.throttle(retry_after, path=r"^/v2/$")
    first = requests.get(f"{fault_proxy.url}/v2/", timeout=5)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == retry_after
    assert requests.get(f"{fault_proxy.url}/v2/", timeout=5).status_code == 200


def test_proxy_drops_the_nth_upload_mid_body(fault_proxy: FaultProxy, registry: LocalRegistry) -> None:
    fault = fault_proxy.drop_upload(nth=2, method="PUT")
    assert _push_blob(fault_proxy.url, b"a" * 50_000).status_code == 201
    with pytest.raises(requests.ConnectionError):
        _push_blob(fault_proxy.url, b"b" * 1_000_000)
    assert fault.fired == 1
    dropped = [e for e in fault_proxy.exchanges if e.fault == "drop"]
    assert len(dropped) == 1 and dropped[0].status is None
    assert 0 < dropped[0].body_bytes < 1_000_000
    # The blob is not in the registry; a new attempt gets through.
    digest = "sha256:" + hashlib.sha256(b"b" * 1_000_000).hexdigest()
    assert requests.head(f"{registry.url}/v2/{REPO}/blobs/{digest}", timeout=5).status_code == 404
    assert _push_blob(fault_proxy.url, b"b" * 1_000_000).status_code == 201
    assert requests.head(f"{registry.url}/v2/{REPO}/blobs/{digest}", timeout=5).status_code == 200


def test_proxy_drops_a_chunked_upload(fault_proxy: FaultProxy) -> None:
    fault_proxy.drop_upload(nth=1, method="PATCH", after_bytes=10_000)
    start = requests.post(f"{fault_proxy.url}/v2/{REPO}/blobs/uploads/", timeout=5)

    def body() -> Iterator[bytes]:
        for _ in range(20):
            yield b"c" * 8192

    with pytest.raises(requests.ConnectionError):
        requests.patch(start.headers["Location"], data=body(), timeout=10)
    assert fault_proxy.exchanges[-1].fault == "drop"


def test_proxy_stall_makes_requests_time_out(fault_proxy: FaultProxy) -> None:
    fault_proxy.stall(2.0, path=r"^/v2/$")
    with pytest.raises(requests.Timeout):
        requests.get(f"{fault_proxy.url}/v2/", timeout=0.5)
    assert requests.get(f"{fault_proxy.url}/v2/", timeout=5).status_code == 200


def test_proxy_in_front_of_a_token_registry(
    token_registry: AuthRegistry, fault_proxy_factory: Callable[[str], FaultProxy]
) -> None:
    proxy = fault_proxy_factory(token_registry.url)
    challenge = requests.get(f"{proxy.url}/v2/", timeout=5)
    assert challenge.status_code == 401
    token = _bearer(token_registry, f"repository:{REPO}:pull,push", token_registry.auth).json()["token"]
    put = _push_blob(proxy.url, b"through-proxy", {"Authorization": f"Bearer {token}"})
    assert put.status_code == 201
    assert all(e.authorized for e in proxy.exchanges[1:])
