"""Pushing an OCI layout: its blobs (``upload``, in parallel), then platform manifests by digest, the
index by digest, and tags last. Everything is content addressed, so a push killed at any point and
run again ends with the same digests and nothing duplicated.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.errors import ImageError, RegistryError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import MAX_MANIFEST_BYTES, Index, parse
from pipeline.registry.body import FileBody
from pipeline.registry.manifests import Manifests
from pipeline.registry.reference import Reference
from pipeline.registry.upload import Uploads


@dataclass(frozen=True)
class PushResult:
    digest: str
    bytes_uploaded: int
    blobs_uploaded: int
    blobs_skipped: int


class Pushes(Uploads, Manifests):
    """Pushing an image or index from an OCI layout."""

    def push_layout(
        self,
        layout: Layout,
        desc: Descriptor,
        ref: Reference,
        tags: Sequence[str] = (),
        *,
        mount_from: Sequence[str] = (),
    ) -> PushResult:
        """Push the image (or index) ``desc`` of ``layout`` to ``ref``'s repository, then tag it."""
        target = Reference(ref.registry, ref.repository)
        manifests: list[tuple[Descriptor, bytes, list[str]]] = []
        blobs: dict[str, Descriptor] = {}
        self._collect(layout, desc, manifests, blobs, set())
        for blob in blobs.values():
            path = layout.blob_path(blob.digest)
            if not path.is_file():
                raise ImageError(f"blob {blob.digest} is missing from the layout {layout.root}")
            if path.stat().st_size != blob.size:
                raise ImageError(
                    f"blob {blob.digest} in {layout.root} is {path.stat().st_size} bytes, "
                    f"its descriptor says {blob.size} (corrupt layout)"
                )
        total = sum(blob.size for blob in blobs.values())
        label = f"push {target.repo_str}"
        self.progress.step(f"pushing {len(blobs)} blobs ({total} bytes) to {target.repo_str}")
        sent = [0]
        sent_lock = threading.Lock()

        def on_bytes(count: int) -> None:
            with sent_lock:
                sent[0] += count
                done = sent[0]
            self.progress.update(label, done, total, unit="bytes")

        def one(blob: Descriptor) -> bool:
            return self.ensure_blob(
                target,
                blob.digest,
                blob.size,
                FileBody(layout.blob_path(blob.digest)),
                mount_from=mount_from,
                on_bytes=on_bytes,
            )

        uploaded = skipped = uploaded_bytes = 0
        # Digests written by this push: a manifest over any of them cannot be in the repository yet,
        # so it needs no HEAD first.
        fresh: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="upload") as pool:
            results = list(pool.map(one, blobs.values()))
            for blob, was_uploaded in zip(blobs.values(), results, strict=True):
                if was_uploaded:
                    uploaded += 1
                    uploaded_bytes += blob.size
                    fresh.add(blob.digest)
                else:
                    skipped += 1

            def put(item: tuple[Descriptor, bytes, list[str]]) -> bool:
                mdesc, data, children = item
                by_digest = target.with_digest(mdesc.digest)
                if not fresh.intersection(children) and self.head_manifest(by_digest, push=True) is not None:
                    return False
                self.put_manifest(by_digest, data, _media_type_of(data, mdesc.media_type))
                return True

            # Level by level: platform manifests (in parallel), then the index over them, by digest.
            height: dict[str, int] = {}
            for mdesc, _data, children in manifests:  # children come before their parents
                height[mdesc.digest] = 1 + max((height.get(c, -1) for c in children), default=-1)
            for level in sorted(set(height.values())):
                batch = [m for m in manifests if height[m[0].digest] == level]
                for item, written in zip(batch, pool.map(put, batch), strict=True):
                    if written:
                        fresh.add(item[0].digest)
        top_data = manifests[-1][1]
        wanted = list(dict.fromkeys([*tags, *([ref.tag] if ref.tag else [])]))
        for tag in wanted:
            tagged = target.with_tag(tag)
            current = self.head_manifest(tagged, push=True)
            if current is None or current.digest != desc.digest:
                self.put_manifest(tagged, top_data, _media_type_of(top_data, desc.media_type))
        self.progress.info(
            f"pushed {target.repo_str}@{desc.digest}: {uploaded} blobs uploaded ({uploaded_bytes} bytes), "
            f"{skipped} already there" + (f", tags {', '.join(wanted)}" if wanted else "")
        )
        return PushResult(desc.digest, uploaded_bytes, uploaded, skipped)

    def _collect(
        self,
        layout: Layout,
        desc: Descriptor,
        manifests: list[tuple[Descriptor, bytes, list[str]]],
        blobs: dict[str, Descriptor],
        seen: set[str],
    ) -> None:
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if desc.media_type not in mediatype.ALL_MANIFEST_TYPES:
            raise ImageError(
                f"{desc.digest} in {layout.root} is a {desc.media_type!r}, not a manifest or index"
            )
        data = layout.read_blob(desc.digest)
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"manifest {desc.digest} is {len(data)} bytes; registries refuse over 4 MiB")
        if len(data) != desc.size:
            raise ImageError(f"manifest {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}")
        item = parse(data, desc.media_type)
        children: list[str] = []
        if isinstance(item, Index):
            for child in item.manifests:
                self._collect(layout, child, manifests, blobs, seen)
                children.append(child.digest)
        else:
            for blob in (item.config, *item.layers):
                blobs.setdefault(blob.digest, blob)
                children.append(blob.digest)
        manifests.append((desc, data, children))


def _media_type_of(data: bytes, fallback: str) -> str:
    """The manifest's own mediaType (what the PUT's Content-Type must be), else the descriptor's."""
    return parse(data, fallback).media_type
