"""The build stage: compile the fork, then assemble its four images into an OCI image layout."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline import record
from pipeline.config import VARIANTS
from pipeline.errors import ImageError, UsageError
from pipeline.golang import compile, toolchain
from pipeline.image import assemble, cabundle, dockerfile, layers
from pipeline.image.busybox import BusyboxSource
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.progress import Progress, Silent
from pipeline.source.checkout import Checkout
from pipeline.stages import fetch_busybox
from pipeline.urls import LOCAL_CHECKOUT, redact

CA_PATH = "/kaniko/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BuildResult:
    layout: Path
    version: str
    images: dict[str, assemble.Image] = field(default_factory=dict)
    # What went in besides the source (toolchain, CA bundle, busybox): the SBOM and provenance say it.
    inputs: dict[str, Any] = field(default_factory=dict)
    go: dict[str, object] = field(default_factory=dict)  # the toolchain: version, origin, path, pinned
    written: Layout | None = field(default=None, repr=False, compare=False)  # the layout, as built
    window: tuple[float, float] = (0.0, 0.0)  # when the build ran (epoch seconds): the provenance's times

    @property
    def descriptors(self) -> dict[str, Descriptor]:
        """Each variant's index descriptor in the layout."""
        return {name: image.index for name, image in self.images.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": str(self.layout),
            "version": self.version,
            "go": dict(self.go),
            "images": {name: image.to_dict() for name, image in self.images.items()},
            "inputs": dict(self.inputs),
            "window": list(self.window),
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
    of a build from the network. Any other local checkout is "local checkout": a path (a user's name)
    never goes into what is signed. Credentials never appear (:func:`pipeline.urls.redact`).
    """
    url = redact(checkout.url)
    if urlparse(url).scheme in ("http", "https", "git", "ssh"):
        return url.removesuffix(".git")
    if checkout.pinned and pinned_url:
        return redact(pinned_url).removesuffix(".git")
    return LOCAL_CHECKOUT


def check_input(*, busybox: str | None, ca_bundle: Path | None, go: str | None) -> None:
    """`invoke build`'s options, checked before the fork record is read or anything built."""
    from pipeline.registry.reference import Reference

    if busybox and not Path(busybox.removeprefix("oci:")).expanduser().is_dir():
        Reference.parse(busybox)  # neither an OCI layout directory nor an image reference: exit 2
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {ca_bundle} is not a file", hint="pass a PEM file of CA certificates")
    if go and "/" in go and not Path(go).expanduser().is_file():
        raise UsageError(f"--go {go} does not exist", hint="pass the path of a go binary, or leave --go out")


@dataclass(frozen=True)
class BuildSpec:
    """What a build makes of a checkout, and with what: the OCI layout ``out``, the ``platforms`` and
    ``variants``, the Go toolchain (``go``: None, the one on PATH if new enough), busybox for debug (an
    OCI layout directory or an image reference, looked up through ``registry_mirror``), the CA bundle
    (None: the pinned certifi one) and the pin's URL (the source annotation of a local mirror's build)."""

    out: Path
    cache_dir: Path
    platforms: Sequence[str]
    variants: Sequence[str]
    go: str | None = None
    busybox: str | None = None
    registry_mirror: str | None = None
    insecure: bool = False
    ca_bundle: Path | None = None
    pinned_url: str | None = None
    gocache: Path | None = None  # Go's build cache (None: under cache_dir)


def build(checkout: Checkout, spec: BuildSpec, *, progress: Progress | None = None) -> BuildResult:
    """Compile ``checkout`` for the spec's platforms and write its variants into its OCI layout."""
    out, cache_dir, platforms, variants = spec.out, spec.cache_dir, spec.platforms, spec.variants
    busybox, ca_bundle = spec.busybox, spec.ca_bundle
    progress = progress or Silent()
    started, began = time.monotonic(), time.time()
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
    box: BusyboxSource | None = None
    if "debug" in variants:
        box = fetch_busybox.fetch(
            model.busybox_digest,
            platforms,
            override=busybox,
            mirror=spec.registry_mirror,
            insecure=spec.insecure,
            progress=progress,
        )
        if not box.pinned:
            progress.warn(
                f"debug gets busybox from {box.description}, not the pinned busybox:musl@{model.busybox_digest}"
            )
    chain = toolchain.find(checkout.path, override=spec.go)
    progress.info(f"Go toolchain: {chain.go} ({chain.version}, from {chain.origin})")
    if not chain.pinned:
        progress.warn(f"Go toolchain {chain.describe()}")
    binaries = compile.compile_all(
        checkout,
        [Platform.parse(p) for p in platforms],
        chain,
        cache_dir,
        gocache=spec.gocache,
        progress=progress,
    )
    layout = Layout.create(out)
    inputs = assemble.Inputs(
        checkout=checkout,
        dockerfile=model,
        binaries=binaries,
        ca_bundle=layers.file(CA_PATH, data=bundle.data, mode=0o644, digest=bundle.digest),
        nsswitch=nsswitch,
        source_url=source_url(checkout, spec.pinned_url),
        busybox=box,
    )
    images = assemble.assemble(layout, inputs, variants, platforms, cache_dir, progress)
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
    return BuildResult(
        layout=out,
        version=checkout.version,
        images=images,
        go=chain.to_dict(),
        inputs=used,
        written=layout,
        window=(began, time.time()),
    )


def save_record(record_file: Path, result: BuildResult) -> None:
    """The build record: the layout and each variant's digest (`invoke publish` reads it)."""
    record.save(record_file, "build", result.to_dict())


def recorded_layout(record_file: Path, *, needed_by: str) -> tuple[Layout, dict[str, Descriptor]]:
    """The one reader of the build record: the layout and each variant's index descriptor."""
    return layout_images(record.stage(record_file, "build", needed_by=needed_by))


def layout_images(build: Mapping[str, Any]) -> tuple[Layout, dict[str, Descriptor]]:
    """The layout and the variants' descriptors of a build (its result's ``to_dict()`` or its record)."""
    layout_dir = build.get("layout")
    recorded = build.get("images")
    if not isinstance(layout_dir, str) or not isinstance(recorded, Mapping) or not recorded:
        raise ImageError(
            "the build record names no layout or no images",
            hint="run `invoke build` again, or pass --layout DIR",
        )
    layout = Layout.open(Path(layout_dir))
    refs = {desc.digest: desc for desc in layout.index().manifests}
    images: dict[str, Descriptor] = {}
    for variant, entry in recorded.items():
        digest = entry.get("digest") if isinstance(entry, Mapping) else None
        if not isinstance(digest, str):
            raise ImageError(
                f"the build record has no digest for {variant!r}", hint="run `invoke build` again"
            )
        desc = refs.get(digest) or _descriptor_from_blob(layout, digest)
        images[str(variant)] = desc
    order = {name: i for i, name in enumerate(VARIANTS)}
    return layout, dict(sorted(images.items(), key=lambda item: order.get(item[0], 99)))


def _descriptor_from_blob(layout: Layout, digest: str) -> Descriptor:
    data = layout.read_blob(digest)
    try:
        media_type = json.loads(data).get("mediaType")
    except ValueError as exc:
        raise ImageError(f"blob {digest} in {layout.root} is not a manifest: {exc}") from None
    if media_type not in mediatype.ALL_MANIFEST_TYPES:
        raise ImageError(f"blob {digest} in {layout.root} is not an image manifest or index")
    return Descriptor(media_type=str(media_type), digest=digest, size=len(data))
