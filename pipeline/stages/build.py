"""The build stage: compile the fork, then assemble its four images into an OCI image layout."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.errors import ImageError, UsageError
from pipeline.golang import compile as compiler
from pipeline.golang import toolchain
from pipeline.image import assemble as assembly
from pipeline.image import busybox as busyboxes
from pipeline.image import cabundle, dockerfile
from pipeline.image import layer as layers
from pipeline.oci.descriptor import Platform
from pipeline.oci.layout import Layout
from pipeline.progress import Progress, Silent
from pipeline.source.checkout import Checkout
from pipeline.urls import redact

CA_PATH = "/kaniko/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BuildResult:
    layout: Path
    version: str
    images: dict[str, assembly.Image] = field(default_factory=dict)
    # What went in besides the source (toolchain, CA bundle, busybox): the SBOM and provenance say it.
    inputs: dict[str, Any] = field(default_factory=dict)
    go: dict[str, object] = field(default_factory=dict)  # the toolchain: version, origin, path, pinned

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": str(self.layout),
            "version": self.version,
            "go": dict(self.go),
            "images": {name: image.to_dict() for name, image in self.images.items()},
            "inputs": dict(self.inputs),
        }


def summary(result: Mapping[str, Any]) -> str:
    """The human summary of a build's JSON result: the layout, each variant's digest, the Go toolchain."""
    go = result.get("go") or {}
    toolchain_line = (
        f"  Go toolchain: {go.get('version', '?')} ({go.get('origin', '?')} {go.get('path', '')})"
    )
    if not go.get("pinned"):
        toolchain_line += (
            f": NOT the pinned {toolchain.PINNED_VERSION}, digests may differ from a pinned build"
        )
    return "\n".join(
        [f"OCI layout {result['layout']} (version {result['version']}):"]
        + [f"  {name}: {image['digest']}" for name, image in result["images"].items()]
        + [toolchain_line]
    )


def source_url(checkout: Checkout, pinned_url: str | None = None) -> str:
    """The org.opencontainers.image.source annotation: the fork's public URL, never a local path.

    A build of the pinned release from a local mirror names the pin's URL, so its digests equal those
    of a build from the network. Other local checkouts name their path. Credentials never appear.
    """
    url = redact(checkout.url)  # never user info (a token) in an image annotation
    if urlparse(url).scheme in ("http", "https", "git", "ssh"):
        return url.removesuffix(".git")
    if checkout.pinned and pinned_url:
        return redact(pinned_url).removesuffix(".git")
    return url.removesuffix(".git")


def build(
    checkout: Checkout,
    *,
    out: Path,
    cache_dir: Path,
    platforms: Sequence[str],
    variants: Sequence[str],
    go: str | None = None,
    busybox: str | None = None,
    registry_mirror: str | None = None,
    insecure: bool = False,
    ca_bundle: Path | None = None,
    pinned_url: str | None = None,
    gocache: Path | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Compile ``checkout`` for ``platforms`` and write ``variants`` into the OCI layout ``out``."""
    progress = progress or Silent()
    started = time.monotonic()
    if not platforms or not variants:
        raise UsageError("nothing to build: name at least one platform and one variant")
    for platform in platforms:
        Platform.parse(platform)
    model = dockerfile.read(checkout.path)
    nsswitch = checkout.path / "files" / "nsswitch.conf"
    if not nsswitch.is_file():
        raise ImageError(
            f"the fork checkout has no files/nsswitch.conf ({nsswitch})", hint="check the checkout"
        )
    bundle = cabundle.from_file(ca_bundle) if ca_bundle else cabundle.pinned()
    progress.info(f"CA bundle: {bundle.origin} ({bundle.digest[:19]})")
    box: busyboxes.Source | None = None
    if "debug" in variants:
        box = busyboxes.source_for(
            model.busybox_digest,
            override=busybox,
            mirror=registry_mirror,
            insecure=insecure,
            progress=progress,
        )
        if not box.pinned:
            progress.warn(
                f"debug gets busybox from {box.description}, not the pinned busybox:musl@{model.busybox_digest}"
            )
    chain = toolchain.find(checkout.path, override=go)
    progress.info(f"Go toolchain: {chain.go} ({chain.version}, from {chain.origin})")
    if not chain.pinned:
        progress.warn(f"Go toolchain {chain.describe()}")
    binaries = compiler.compile_all(
        checkout, [Platform.parse(p) for p in platforms], chain, cache_dir, gocache=gocache, progress=progress
    )
    layout = Layout.create(out)
    inputs = assembly.Inputs(
        checkout=checkout,
        dockerfile=model,
        binaries=binaries,
        ca_bundle=layers.file(CA_PATH, data=bundle.data, mode=0o644, digest=bundle.digest),
        nsswitch=nsswitch,
        source_url=source_url(checkout, pinned_url),
        busybox=box,
    )
    images = assembly.assemble(layout, inputs, variants, platforms, cache_dir, progress)
    progress.step(
        f"built {', '.join(variants)} for {', '.join(platforms)} in {time.monotonic() - started:.1f} s "
        f"with Go {chain.describe()}"
    )
    used: dict[str, Any] = {
        "go_version": chain.version,
        "go_origin": chain.origin,
        "ca_bundle": bundle.origin,
        "ca_bundle_digest": bundle.digest,
        "busybox": model.busybox_digest if box is not None and box.pinned else None,
        "busybox_source": box.description if box is not None else None,
    }
    return BuildResult(layout=out, version=checkout.version, images=images, go=chain.to_dict(), inputs=used)
