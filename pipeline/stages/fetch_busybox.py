"""Fetching busybox for the debug image, before the assembly: the ``busybox:musl@sha256:...`` image the
fork's Dockerfile pins, for each platform built, from Docker Hub or a mirror holding the same repository
and digest (through the project's registry client), or an override: an OCI image layout directory (read
where it is) or another image reference.

What it returns holds everything the assembly reads (the platforms' manifests and layer blobs, or the
layout on disk), so the assembly itself (:mod:`pipeline.image`) never reaches a registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.image import busybox
from pipeline.oci.descriptor import Platform
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import Reference

REPOSITORY = "library/busybox"


def fetch(
    pinned_digest: str,
    platforms: Sequence[str],
    *,
    override: str | None = None,
    mirror: str | None = None,
    insecure: bool = False,
    progress: Progress | None = None,
) -> busybox.BusyboxSource:
    """busybox for ``platforms``: an override (a layout directory or a reference), else the pinned digest
    from ``mirror`` or Docker Hub. ``insecure`` covers the registry busybox comes from, nothing else."""
    progress = progress or Silent()
    if override:
        path = Path(override.removeprefix("oci:")).expanduser()
        if path.is_dir():
            return busybox.LayoutSource(path, pinned_digest)
        ref = Reference.parse(override)
    else:
        ref = Reference.parse(f"{mirror or 'docker.io'}/{REPOSITORY}@{pinned_digest}")
    if ref.digest is None:
        ref = ref.with_digest(pinned_digest)
    progress.info(f"fetching busybox {ref} for {', '.join(platforms)}")
    from pipeline.registry.client import Client  # the HTTP client loads only when busybox is pulled

    with Client(insecure=[ref.host] if insecure else (), progress=progress) as client:
        manifests = {
            str(Platform.parse(p)): client.pull_platform(ref, Platform.parse(p))[0] for p in platforms
        }
        blobs = {
            layer.digest: client.get_blob(ref, layer.digest)
            for manifest in manifests.values()
            for layer in manifest.layers
        }
    return busybox.Fetched(str(ref), ref.digest == pinned_digest, manifests, blobs)
