"""Assemble the four variants (executor, debug, slim, warmer) as the Dockerfile's final stages
define them, one image per platform and one index per variant, into an OCI image layout.

Layers follow the stages, so variants share them:
  base-slim  /etc/nsswitch.conf, /kaniko (0777), /kaniko/ssl/certs/ca-certificates.crt
  base       the three credential helpers, /kaniko/.docker, the WORKDIR (/workspace)
  executor   /kaniko/executor           warmer   /kaniko/warmer
  busybox    /busybox (debug)           bin-sh   /bin, /bin/sh -> /busybox/sh (debug)
Every entry is owned by 0:0 and dated SOURCE_DATE_EPOCH (the commit time).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ImageError
from pipeline.golang.compile import Binaries
from pipeline.image import layers
from pipeline.image.busybox import BusyboxSource, bin_entries
from pipeline.image.dockerfile import Dockerfile, ImageConfig
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, canonical_json, descriptor_of
from pipeline.progress import Progress, Silent
from pipeline.source.checkout import Checkout

KANIKO_MODE = 0o777
DIR_MODES = {"/kaniko": KANIKO_MODE}
HELPERS = ("docker-credential-gcr", "docker-credential-ecr-login", "docker-credential-acr-env")
_DEFAULT_VARIANT = {"arm64": "v8"}


@dataclass(frozen=True)
class Inputs:
    checkout: Checkout
    dockerfile: Dockerfile
    binaries: Mapping[str, Binaries]  # str(platform) -> binaries
    ca_bundle: layers.Entry
    nsswitch: Path
    source_url: str
    busybox: BusyboxSource | None = None


@dataclass(frozen=True)
class Image:
    """One variant in the layout: its index, and its manifests by platform."""

    variant: str
    index: Descriptor
    manifests: Mapping[str, Descriptor] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"digest": self.index.digest, "platforms": {p: d.digest for p, d in self.manifests.items()}}


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_annotations(inputs: Inputs) -> dict[str, str]:
    checkout = inputs.checkout
    return {
        "org.opencontainers.image.created": rfc3339(checkout.commit_time),
        "org.opencontainers.image.revision": checkout.commit,
        "org.opencontainers.image.source": inputs.source_url,
        "org.opencontainers.image.version": checkout.version,
    }


def oci_platform(text: str) -> Platform:
    platform = Platform.parse(text)
    if platform.variant is None and platform.architecture in _DEFAULT_VARIANT:
        platform = Platform(platform.os, platform.architecture, _DEFAULT_VARIANT[platform.architecture])
    return platform


class _Assembler:
    def __init__(self, layout: Layout, inputs: Inputs, cache_dir: Path, progress: Progress) -> None:
        self.layout = layout
        self.inputs = inputs
        self.epoch = inputs.checkout.commit_time
        self.cache = cache_dir / "layers"
        self.progress = progress
        self._written: dict[str, layers.Layer] = {}

    def layer(self, entries: Sequence[layers.Entry]) -> layers.Layer:
        written = layers.cached(entries, self.epoch, self.cache, dir_modes=DIR_MODES)
        if written.digest not in self._written:
            layers.copy_into(written, self.layout.blob_path(written.digest))
            self._written[written.digest] = written
        return written

    def _binary(self, bins: Binaries, name: str) -> layers.Entry:
        return layers.file(f"/kaniko/{name}", source=bins.paths[name], mode=0o755, digest=bins.digests[name])

    def base_slim(self) -> list[layers.Entry]:
        return [
            layers.directory("/kaniko", KANIKO_MODE),
            self.inputs.ca_bundle,
            layers.file("/etc/nsswitch.conf", source=self.inputs.nsswitch, mode=0o644),
        ]

    def base(self, bins: Binaries, workdir: str | None) -> list[layers.Entry]:
        entries = [self._binary(bins, name) for name in HELPERS]
        entries.append(layers.directory("/kaniko/.docker", 0o755))
        if workdir:
            entries.append(layers.directory(workdir, 0o755))
        return entries

    def plan(self, variant: str, platform: str, config: ImageConfig) -> list[tuple[str, list[layers.Entry]]]:
        """(history text, entries) per layer of ``variant`` for ``platform``."""
        bins = self.inputs.binaries[platform]
        slim = (
            "COPY ca-certificates.crt /kaniko/ssl/certs/, files/nsswitch.conf /etc/nsswitch.conf",
            self.base_slim(),
        )
        base = ("COPY credential helpers /kaniko/, /kaniko/.docker; WORKDIR", self.base(bins, config.workdir))
        executor = ("COPY executor /kaniko/executor", [self._binary(bins, "executor")])
        warmer = ("COPY warmer /kaniko/warmer", [self._binary(bins, "warmer")])
        if variant == "slim":
            plan = [slim, executor]
            if config.workdir:
                plan.append(("WORKDIR " + config.workdir, [layers.directory(config.workdir)]))
            return plan
        if variant == "executor":
            return [slim, base, executor]
        if variant == "warmer":
            return [slim, base, warmer]
        if variant == "debug":
            source = self.inputs.busybox
            if source is None:
                raise ImageError("the debug image needs busybox, and no busybox source was given")
            box = bin_entries(source, Platform.parse(platform), progress=self.progress)
            sh = [layers.directory("/bin", 0o755), layers.symlink("/bin/sh", "/busybox/sh")]
            return [
                slim,
                base,
                executor,
                warmer,
                ("COPY --from=busybox /bin /busybox", box),
                ("RUN mkdir -p /bin && ln -s /busybox/sh /bin/sh", sh),
            ]
        raise ImageError(f"unknown variant {variant!r}")

    def image(self, variant: str, platform: str) -> Descriptor:
        config = self.inputs.dockerfile.configs[variant]
        created = rfc3339(self.epoch)
        written: list[layers.Layer] = []
        history: list[dict[str, object]] = []
        for text, entries in self.plan(variant, platform, config):
            written.append(self.layer(entries))
            history.append({"created": created, "created_by": text, "comment": "kaniko-pipeline"})
        oci = oci_platform(platform)
        body: dict[str, object] = {"Env": config.env_list()}
        if config.entrypoint is not None:
            body["Entrypoint"] = list(config.entrypoint)
        if config.workdir:
            body["WorkingDir"] = config.workdir
        if config.volumes:
            body["Volumes"] = {volume: {} for volume in config.volumes}
        image_config: dict[str, object] = {
            "architecture": oci.architecture,
            "os": oci.os,
            "created": created,
            "config": body,
            "rootfs": {"type": "layers", "diff_ids": [w.diff_id for w in written]},
            "history": history,
        }
        if oci.variant:
            image_config["variant"] = oci.variant
        config_bytes = canonical_json(image_config)
        config_digest = self.layout.write_blob(config_bytes)
        manifest = Manifest(
            config=Descriptor(mediatype.OCI_CONFIG, config_digest, len(config_bytes)),
            layers=[w.descriptor() for w in written],
            annotations=image_annotations(self.inputs),
        )
        desc = self.layout.write_manifest(manifest)
        return Descriptor(desc.media_type, desc.digest, desc.size, platform=oci)


def assemble(
    layout: Layout,
    inputs: Inputs,
    variants: Sequence[str],
    platforms: Sequence[str],
    cache_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Image]:
    """Write every variant for every platform into ``layout``; index.json names each variant's index."""
    progress = progress or Silent()
    assembler = _Assembler(layout, inputs, cache_dir, progress)
    images: dict[str, Image] = {}
    for variant in variants:
        progress.step(f"assembling {variant} for {', '.join(platforms)}")
        manifests = {platform: assembler.image(variant, platform) for platform in platforms}
        index = Index(manifests=list(manifests.values()), annotations=image_annotations(inputs))
        data = index.to_bytes()
        layout.write_blob(data)
        desc = descriptor_of(index, data)
        layout.set_ref(variant, desc)
        images[variant] = Image(variant, desc, manifests)
    return images
