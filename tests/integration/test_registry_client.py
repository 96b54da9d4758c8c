"""The registry client against the real distribution registry (anonymous, htpasswd, token auth),
read back with skopeo, an independent client."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pipeline.errors import AuthError, RegistryError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.progress import Progress
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import Reference
from pipeline.services.distribution import LocalRegistry
from tests.support.faultproxy import settle
from tests.support.layouts import blob_bytes, build_image
from tests.support.registries import AuthRegistry, Factory
from tests.support.skopeo import check_pushed, skopeo_raw


@pytest.fixture
def image(tmp_path: Path) -> tuple[Layout, Descriptor]:
    return build_image(tmp_path / "layout")


def anonymous() -> Credentials:
    return Credentials.anonymous()


def with_password(host: str, user: str, password: str) -> Credentials:
    return Credentials({host: Credential(user, password)}, env={})


# -- push -----------------------------------------------------------------------------------------
def test_push_anonymous_then_repush_uploads_nothing(
    registry: LocalRegistry, image: tuple[Layout, Descriptor], registry_factory: Factory
) -> None:
    layout, top = image
    proxy = registry_factory.proxy(registry.url)
    client = Client(credentials=anonymous())
    ref = Reference.parse(f"{proxy.host}/team/app")
    first = client.push_layout(layout, top, ref, tags=["v1", "latest"])
    assert first.digest == top.digest
    assert first.blobs_uploaded == 5 and first.blobs_skipped == 0  # shared layer, 2 own layers, 2 configs
    assert first.bytes_uploaded == blob_bytes(layout, top)
    assert proxy.bytes_uploaded() >= first.bytes_uploaded
    check_pushed(layout, top, f"{registry.host}/team/app:v1")
    assert skopeo_raw(f"{registry.host}/team/app:latest") == layout.read_blob(top.digest)
    assert sorted(client.list_tags(ref)) == ["latest", "v1"]

    # Again, with a fresh client (no memory of the first push): nothing is uploaded or rewritten.
    proxy.reset_counts()
    again = Client(credentials=anonymous()).push_layout(layout, top, ref, tags=["v1", "latest"])
    assert (again.digest, again.bytes_uploaded, again.blobs_uploaded, again.blobs_skipped) == (
        top.digest,
        0,
        0,
        5,
    )
    assert proxy.bytes_uploaded() == 0
    assert proxy.count("PUT") == 0  # manifests and tags were already right


def test_push_order_manifests_by_digest_before_index_then_tags(
    registry: LocalRegistry, image: tuple[Layout, Descriptor], registry_factory: Factory
) -> None:
    layout, top = image
    proxy = registry_factory.proxy(registry.url)
    Client(credentials=anonymous()).push_layout(layout, top, Reference.parse(f"{proxy.host}/team/app:v1"))
    settle(proxy, lambda: proxy.count("PUT", "/manifests/") >= 4)
    puts = [e.path for e in proxy.exchanges if e.method == "PUT" and "/manifests/" in e.path]
    index = parse(layout.read_blob(top.digest))
    assert isinstance(index, Index)
    children = {f"/v2/team/app/manifests/{d.digest}" for d in index.manifests}
    assert set(puts[:2]) == children
    assert puts[2:] == [f"/v2/team/app/manifests/{top.digest}", "/v2/team/app/manifests/v1"]
    blob_puts = [i for i, e in enumerate(proxy.exchanges) if e.method == "PUT" and "/blobs/" in e.path]
    first_manifest = next(
        i for i, e in enumerate(proxy.exchanges) if e.method == "PUT" and "/manifests/" in e.path
    )
    assert max(blob_puts) < first_manifest


def test_push_with_htpasswd(registry_htpasswd: AuthRegistry, image: tuple[Layout, Descriptor]) -> None:
    layout, top = image
    reg = registry_htpasswd
    client = Client(credentials=with_password(reg.host, reg.username, reg.password))
    result = client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"), tags=["v1"])
    assert result.digest == top.digest
    check_pushed(layout, top, f"{reg.host}/team/app:v1", reg.username, reg.password)


def test_htpasswd_wrong_password_is_a_clear_auth_error(
    registry_htpasswd: AuthRegistry, image: tuple[Layout, Descriptor], capsys: pytest.CaptureFixture[str]
) -> None:
    layout, top = image
    reg = registry_htpasswd
    wrong = reg.password + "-wrong"
    client = Client(credentials=with_password(reg.host, reg.username, wrong))
    with pytest.raises(AuthError) as info:
        client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"))
    assert "refused" in str(info.value) and reg.username in str(info.value)
    assert wrong not in str(info.value) and reg.password not in str(info.value)
    with pytest.raises(AuthError, match="requires a username and password"):
        Client(credentials=anonymous()).push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"))
    captured = capsys.readouterr()
    assert reg.password not in captured.out + captured.err


def test_push_with_token_auth(token_registry: AuthRegistry, image: tuple[Layout, Descriptor]) -> None:
    layout, top = image
    reg = token_registry
    assert reg.tokens is not None
    reg.tokens.token_field = "access_token"  # some token servers answer only this field
    stream = io.StringIO()
    client = Client(
        credentials=with_password(reg.host, reg.username, reg.password),
        progress=Progress(stream, interactive=False),
    )
    result = client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"), tags=["v1"])
    assert result.digest == top.digest
    # every scope is its own parameter, and one token serves the whole push (cached per scope set)
    asked = [r for r in reg.tokens.requests if r.status == 200]
    assert asked and all(r.scopes == ["repository:team/app:pull,push"] for r in asked)
    assert len(asked) <= 2
    check_pushed(layout, top, f"{reg.host}/team/app:v1", reg.username, reg.password)
    assert reg.password not in stream.getvalue()


def test_token_auth_wrong_password(token_registry: AuthRegistry, image: tuple[Layout, Descriptor]) -> None:
    layout, top = image
    reg = token_registry
    client = Client(credentials=with_password(reg.host, reg.username, "nope-" + reg.password))
    with pytest.raises(AuthError, match="token server") as info:
        client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"))
    assert reg.password not in str(info.value)


def test_insufficient_scope_is_a_clear_error(
    token_registry: AuthRegistry, image: tuple[Layout, Descriptor]
) -> None:
    layout, top = image
    reg = token_registry
    assert reg.tokens is not None
    reg.tokens.deny.add("team/locked")
    client = Client(credentials=with_password(reg.host, reg.username, reg.password))
    with pytest.raises(AuthError, match="refused access"):
        client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/locked"))


def test_mount_across_repositories(
    registry: LocalRegistry, image: tuple[Layout, Descriptor], registry_factory: Factory
) -> None:
    layout, top = image
    proxy = registry_factory.proxy(registry.url)
    client = Client(credentials=anonymous())
    client.push_layout(layout, top, Reference.parse(f"{proxy.host}/team/one"), tags=["v1"])
    proxy.reset_counts()
    result = client.push_layout(layout, top, Reference.parse(f"{proxy.host}/team/two"), tags=["v1"])
    assert (result.bytes_uploaded, result.blobs_uploaded, result.blobs_skipped) == (0, 0, 5)
    assert proxy.bytes_uploaded() == 0
    mounts = [e for e in proxy.exchanges if e.method == "POST" and e.status == 201]
    assert len(mounts) == 5
    check_pushed(layout, top, f"{registry.host}/team/two:v1")

    # A fresh client is told where the blobs are.
    proxy.reset_counts()
    fresh = Client(credentials=anonymous())
    result = fresh.push_layout(
        layout, top, Reference.parse(f"{proxy.host}/team/three"), mount_from=["team/one"]
    )
    assert result.bytes_uploaded == 0 and proxy.bytes_uploaded() == 0


def test_chunked_upload(
    registry: LocalRegistry, image: tuple[Layout, Descriptor], registry_factory: Factory
) -> None:
    layout, top = image
    proxy = registry_factory.proxy(registry.url)
    client = Client(credentials=anonymous(), monolithic_limit=50_000, chunk_size=64_000)
    result = client.push_layout(layout, top, Reference.parse(f"{proxy.host}/team/app"), tags=["v1"])
    assert result.digest == top.digest
    assert proxy.count("PATCH") >= 8  # two ~200 kB layers in 64 kB chunks
    check_pushed(layout, top, f"{registry.host}/team/app:v1")


def test_chunked_fallback_when_monolithic_refused(registry: LocalRegistry, registry_factory: Factory) -> None:
    proxy = registry_factory.proxy(registry.url)
    proxy.fail(413, method="PUT", path=r"/blobs/uploads/", times=1)
    client = Client(credentials=anonymous())
    ref = Reference.parse(f"{proxy.host}/team/blob")
    data = b"x" * 100_000 + b"end"
    digest = client.upload_blob(ref, data)
    assert digest == digests.of_bytes(data)
    assert proxy.count("PATCH") >= 1
    assert (
        Client(credentials=anonymous()).get_blob(Reference.parse(f"{registry.host}/team/blob"), digest)
        == data
    )


def test_oversized_manifest_refused(registry: LocalRegistry) -> None:
    client = Client(credentials=anonymous())
    big = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    with pytest.raises(RegistryError, match="4 MiB"):
        client.put_manifest(Reference.parse(f"{registry.host}/team/app:big"), big, mediatype.OCI_MANIFEST)


# -- pull -----------------------------------------------------------------------------------------
def test_pull_by_tag_digest_and_platform(
    registry: LocalRegistry, image: tuple[Layout, Descriptor], tmp_path: Path
) -> None:
    layout, top = image
    client = Client(credentials=anonymous())
    ref = Reference.parse(f"{registry.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    data, desc = client.get_manifest(ref)
    assert (
        desc.digest == top.digest
        and desc.media_type == mediatype.OCI_INDEX
        and data == layout.read_blob(top.digest)
    )
    assert client.get_manifest(ref.with_digest(top.digest))[0] == data
    head = client.head_manifest(ref)
    assert head is not None and (head.digest, head.size) == (top.digest, top.size)
    assert client.head_manifest(ref.with_tag("nope")) is None
    with pytest.raises(RegistryError, match="not found"):
        client.get_manifest(ref.with_tag("nope"))

    index = parse(data)
    assert isinstance(index, Index)
    for platform_text in ("linux/arm64", "linux/arm64/v8", "linux/amd64"):
        manifest, mdesc = client.pull_platform(ref, Platform.parse(platform_text))
        expected = next(
            d for d in index.manifests if d.platform and Platform.parse(platform_text).matches(d.platform)
        )
        assert mdesc.digest == expected.digest
        assert manifest.to_bytes() == layout.read_blob(expected.digest)
        layer = manifest.layers[1]
        assert client.get_blob(ref, layer.digest) == layout.read_blob(layer.digest)
        dest = tmp_path / "pulled" / layer.digest.replace(":", "-")
        client.download_blob(ref, layer.digest, dest)
        assert dest.read_bytes() == layout.read_blob(layer.digest)
    # an image manifest by digest: its config says which platform it is
    arm = next(d for d in index.manifests if d.platform and d.platform.architecture == "arm64")
    manifest, mdesc = client.pull_platform(ref.with_digest(arm.digest), Platform.parse("linux/arm64"))
    assert mdesc.digest == arm.digest
    with pytest.raises(RegistryError, match="linux/amd64"):
        client.pull_platform(ref.with_digest(arm.digest), Platform.parse("linux/amd64"))
    with pytest.raises(RegistryError, match="no image for linux/s390x") as info:
        client.pull_platform(ref, Platform.parse("linux/s390x"))
    assert "linux/amd64" in str(info.value)


def test_pull_from_htpasswd_registry(
    registry_htpasswd: AuthRegistry, image: tuple[Layout, Descriptor]
) -> None:
    layout, top = image
    reg = registry_htpasswd
    client = Client(credentials=with_password(reg.host, reg.username, reg.password))
    ref = Reference.parse(f"{reg.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    manifest, _ = client.pull_platform(ref, Platform.parse("linux/amd64"))
    assert isinstance(manifest, Manifest)
    assert client.get_blob(ref, manifest.config.digest) == layout.read_blob(manifest.config.digest)


def test_anonymous_pull_with_token_auth(
    token_registry: AuthRegistry, image: tuple[Layout, Descriptor]
) -> None:
    """Docker Hub's way for public images: an anonymous token (no credentials sent) that may pull."""
    layout, top = image
    reg = token_registry
    assert reg.tokens is not None
    ref = Reference.parse(f"{reg.host}/team/app:v1")
    Client(credentials=with_password(reg.host, reg.username, reg.password)).push_layout(layout, top, ref)
    reg.tokens.anonymous_pull = True
    reg.tokens.token_field = "token"
    before = len(reg.tokens.requests)
    client = Client(credentials=anonymous())
    manifest, _ = client.pull_platform(ref, Platform.parse("linux/arm64"))
    assert client.get_blob(ref, manifest.layers[1].digest) == layout.read_blob(manifest.layers[1].digest)
    asked = reg.tokens.requests[before:]
    assert asked and all(r.account is None and r.scopes == ["repository:team/app:pull"] for r in asked)
    with pytest.raises(AuthError, match="anonymously"):
        client.put_manifest(ref.with_tag("v2"), layout.read_blob(top.digest), mediatype.OCI_INDEX)
