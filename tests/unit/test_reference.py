"""Reference parsing and normalisation (distribution's grammar, Docker Hub's defaults)."""

from __future__ import annotations

import pytest

from pipeline.errors import ReferenceError_
from pipeline.registry.reference import Reference, is_loopback_host

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", None, None),
        ("busybox:musl", "docker.io", "library/busybox", "musl", None),
        ("docker.io/busybox", "docker.io", "library/busybox", None, None),
        ("index.docker.io/busybox", "docker.io", "library/busybox", None, None),
        ("registry-1.docker.io/team/app:v1", "docker.io", "team/app", "v1", None),
        ("team/kaniko-executor:v1.25.16", "docker.io", "team/kaniko-executor", "v1.25.16", None),
        (f"busybox:musl@{D}", "docker.io", "library/busybox", "musl", D),
        (f"busybox@{D}", "docker.io", "library/busybox", None, D),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", None),
        ("127.0.0.1:5000/team/app:latest", "127.0.0.1:5000", "team/app", "latest", None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("ghcr.io/org/sub/app", "ghcr.io", "org/sub/app", None, None),
        ("Example.COM/app", "example.com", "app", None, None),
        ("quay.io/a_b/c__d/e-f--g/h.i", "quay.io", "a_b/c__d/e-f--g/h.i", None, None),
        ("host:5000/app:TAG_1.x-y", "host:5000", "app", "TAG_1.x-y", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_hosts_and_forms() -> None:
    hub = Reference.parse("busybox:musl")
    assert hub.host == "registry-1.docker.io"
    assert hub.repo_str == "docker.io/library/busybox"
    assert str(hub) == "docker.io/library/busybox:musl"
    local = Reference.parse("127.0.0.1:5000/team/app")
    assert local.host == "127.0.0.1:5000"
    assert local.identifier == "latest"
    assert str(local.with_tag("v1")) == "127.0.0.1:5000/team/app:v1"
    assert str(local.with_digest(D)) == f"127.0.0.1:5000/team/app@{D}"
    assert Reference.parse(str(hub.with_digest(D))) == hub.with_digest(D)


@pytest.mark.parametrize(
    ("text", "loopback"),
    [
        ("127.0.0.1:5000/a", True),
        ("127.1.2.3/a", True),
        ("localhost:1/a", True),
        ("[::1]:5000/a", True),
        ("busybox", False),
        ("10.0.0.1:5000/a", False),
        ("example.com/a", False),
        ("localhost.example.com/a", False),
    ],
)
def test_loopback(text: str, loopback: bool) -> None:
    assert Reference.parse(text).is_loopback is loopback


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Busybox", "lowercase"),
        ("docker.io/Team/app", "lowercase"),
        ("example.com/App:v1", "lowercase"),
        ("app:", "tag"),
        ("app:-bad", "tag"),
        ("app:.bad", "tag"),
        ("app:" + "x" * 129, "tag"),
        ("app:bad/tag", "not a valid"),
        ("app@sha256:abc", "64"),
        ("app@md5:" + "a" * 32, "unsupported"),
        ("app@sha256:" + "A" * 64, "lowercase hex"),
        ("app@", "digest"),
        ("https://example.com/app", "scheme"),
        ("example.com/", "empty"),
        ("example.com//app", "empty path component"),
        ("team//app", "empty path component"),
        ("app/", "empty path component"),
        ("-app", "not a valid"),
        ("app-", "not a valid"),
        ("a..b", "not a valid"),
        ("a___b", "not a valid"),
        ("exa_mple.com:5000/app", "registry host"),
        ("example.com:99999/app", "out of range"),
        ("with space", "white space"),
        ("example.com/" + "a" * 300, "longer than 255"),
        (":tag", "empty"),
    ],
)
def test_bad_references(text: str, says: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        Reference.parse(text)
    assert says in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.3.4.5", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("LocalHost", True),
        ("registry.localhost:5000", False),  # a name, not an address: TLS like any other
        ("localhost.", False),
        (" 127.0.0.1", False),
        ("docker.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.test", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
