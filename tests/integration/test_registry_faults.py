"""Pushes through the fault-injecting proxy: each completes with the right digests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RegistryError
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import Reference
from pipeline.services.distribution import LocalRegistry
from tests.support.faultproxy import FaultProxy, retry_after_date, settle
from tests.support.layouts import blob_bytes, build_image
from tests.support.registries import Factory
from tests.support.skopeo import check_pushed


@pytest.fixture
def image(tmp_path: Path) -> tuple[Layout, Descriptor]:
    return build_image(tmp_path / "layout", layer_size=1_000_000)


def _push(proxy: FaultProxy, image: tuple[Layout, Descriptor], **client_args: Any) -> None:
    layout, top = image
    client = Client(credentials=Credentials.anonymous(), **client_args)
    result = client.push_layout(layout, top, Reference.parse(f"{proxy.host}/team/app"), tags=["v1"])
    assert result.digest == top.digest


def test_dropped_connections_mid_upload(
    fault_proxy: FaultProxy, registry: LocalRegistry, image: tuple[Layout, Descriptor]
) -> None:
    first = fault_proxy.drop_upload(nth=1)
    third = fault_proxy.drop_upload(nth=3, after_bytes=100_000)
    _push(fault_proxy, image)
    assert first.fired == 1 and third.fired == 1
    check_pushed(*image, f"{registry.host}/team/app:v1")


def test_dropped_upload_then_rerun_duplicates_nothing(
    fault_proxy: FaultProxy, registry: LocalRegistry, image: tuple[Layout, Descriptor]
) -> None:
    """A push that dies (here: every upload dropped until the deadline) and is run again."""
    layout, top = image
    fault_proxy.drop_upload(nth=1, times=1000)
    client = Client(credentials=Credentials.anonymous(), deadline=3.0)
    with pytest.raises(RegistryError):
        client.push_layout(layout, top, Reference.parse(f"{fault_proxy.host}/team/app"), tags=["v1"])
    fault_proxy.clear()
    _push(fault_proxy, image)
    check_pushed(layout, top, f"{registry.host}/team/app:v1")
    fault_proxy.reset_counts()
    again = Client(credentials=Credentials.anonymous()).push_layout(
        layout, top, Reference.parse(f"{fault_proxy.host}/team/app"), tags=["v1"]
    )
    assert (again.bytes_uploaded, again.blobs_uploaded) == (0, 0)
    assert fault_proxy.bytes_uploaded() == 0


@pytest.mark.parametrize("retry_after", ["1", "date"])
def test_429_with_retry_after(
    fault_proxy: FaultProxy, registry: LocalRegistry, image: tuple[Layout, Descriptor], retry_after: str
) -> None:
    value = retry_after_date(2) if retry_after == "date" else retry_after
    on_upload = fault_proxy.throttle(value, method="PUT", path=r"/blobs/uploads/", times=2)
    on_manifest = fault_proxy.throttle(value, method="PUT", path=r"/manifests/", times=1)
    on_head = fault_proxy.throttle(value, method="HEAD", times=1)
    _push(fault_proxy, image)
    assert (on_upload.fired, on_manifest.fired, on_head.fired) == (2, 1, 1)
    check_pushed(*image, f"{registry.host}/team/app:v1")


def test_server_errors(
    fault_proxy: FaultProxy, registry: LocalRegistry, image: tuple[Layout, Descriptor]
) -> None:
    faults = [
        fault_proxy.fail(500, method="HEAD", path=r"/blobs/", times=2),
        fault_proxy.fail(503, method="POST", path=r"/blobs/uploads/", times=2),
        fault_proxy.fail(502, method="PUT", path=r"/blobs/uploads/", times=2),
        fault_proxy.fail(500, method="PUT", path=r"/manifests/", times=2),
        fault_proxy.fail(408, method="PUT", path=r"/manifests/v1", times=1),
    ]
    _push(fault_proxy, image)
    assert [f.fired for f in faults] == [2, 2, 2, 2, 1]
    check_pushed(*image, f"{registry.host}/team/app:v1")


def test_request_timeout_is_retried(
    fault_proxy: FaultProxy, registry: LocalRegistry, image: tuple[Layout, Descriptor]
) -> None:
    stall = fault_proxy.stall(3, method="HEAD", path=r"/manifests/", times=1)
    _push(fault_proxy, image, timeout=1.0)
    assert stall.fired == 1
    check_pushed(*image, f"{registry.host}/team/app:v1")


def test_errors_beyond_the_deadline_fail_clearly(
    fault_proxy: FaultProxy, image: tuple[Layout, Descriptor]
) -> None:
    fault_proxy.fail(503, times=1000)
    with pytest.raises(RegistryError, match="gave up|HTTP 503"):
        _push(fault_proxy, image, deadline=2.0)


def test_expired_token_mid_push(registry_factory: Factory, tmp_path: Path) -> None:
    """The token dies while the push goes on (the registry says invalid_token): a new one is fetched."""
    reg = registry_factory.token(lifetime=3)
    tokens = reg.tokens
    assert tokens is not None
    issue = tokens.issue

    def lying_issue(account: str | None, scopes: list[str]) -> dict[str, Any]:
        body = issue(account, scopes)
        body["expires_in"] = 3600  # the client believes it, the registry does not
        return body

    tokens.issue = lying_issue  # type: ignore[method-assign]
    proxy = registry_factory.proxy(reg.url)
    stall = proxy.stall(4, method="PUT", path=r"/manifests/", times=1)
    layout, top = build_image(tmp_path / "layout")
    client = Client(credentials=Credentials({proxy.host: Credential(reg.username, reg.password)}, env={}))
    result = client.push_layout(layout, top, Reference.parse(f"{proxy.host}/team/app"), tags=["v1"])
    assert result.digest == top.digest and result.bytes_uploaded == blob_bytes(layout, top)
    assert stall.fired == 1
    settle(proxy, lambda: proxy.count("PUT", r"/manifests/") >= 5)
    assert proxy.count("PUT", r"/manifests/") >= 5  # 2 platforms + index + tag, and the refused one again
    assert len([r for r in tokens.requests if r.status == 200]) >= 2
    check_pushed(layout, top, f"{reg.host}/team/app:v1", reg.username, reg.password)
