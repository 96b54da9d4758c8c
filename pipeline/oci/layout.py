"""OCI image layout on disk (OCI image spec, image-layout.md): blobs/, index.json, oci-layout.

Every write is atomic (a temporary file renamed into place), and blobs are content-addressed, so an
interrupted build never leaves a blob whose content differs from its name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import ImageError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest, canonical_json, descriptor_of, parse

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path) -> Layout:
        layout = cls(root)
        (layout.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (layout.root / "oci-layout").exists():
            layout._write_atomic(layout.root / "oci-layout", canonical_json(LAYOUT_VERSION))
        if not (layout.root / "index.json").exists():
            layout._write_atomic(layout.root / "index.json", Index(manifests=[]).to_bytes())
        return layout

    @classmethod
    def open(cls, root: Path) -> Layout:
        layout = cls(root)
        marker = layout.root / "oci-layout"
        try:
            version = json.loads(marker.read_text())
        except FileNotFoundError as exc:
            raise ImageError(
                f"{root} is not an OCI image layout (no oci-layout file)",
                hint="run `invoke build` first, or pass --layout with the directory it wrote",
            ) from exc
        except ValueError as exc:
            raise ImageError(f"{marker} is not JSON: {exc}") from exc
        if version.get("imageLayoutVersion") != "1.0.0":
            raise ImageError(
                f"{root} has unsupported imageLayoutVersion {version.get('imageLayoutVersion')!r}"
            )
        return layout

    # -- blobs ----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digests.algorithm(digest) / digests.encoded(digest)

    def read_blob(self, digest: str) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise ImageError(f"blob {digest} is missing from the layout {self.root}") from exc
        if digests.of_bytes(data) != digest:
            raise ImageError(f"blob {digest} in {self.root} does not match its digest (corrupt layout)")
        return data

    def write_blob(self, data: bytes) -> str:
        digest = digests.of_bytes(data)
        path = self.blob_path(digest)
        if not path.exists():
            self._write_atomic(path, data)
        return digest

    def add_blob_file(self, source: Path) -> tuple[str, int]:
        """Copy a file into the layout as a blob; returns its digest and size."""
        digest, size = digests.of_file(source)
        path = self.blob_path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return digest, size

    def write_manifest(self, manifest: Manifest | Index) -> Descriptor:
        data = manifest.to_bytes()
        self.write_blob(data)
        return descriptor_of(manifest, data)

    def read_manifest(self, desc: Descriptor) -> Manifest | Index:
        return parse(self.read_blob(desc.digest), desc.media_type)

    # -- index.json -----------------------------------------------------------------------
    def index(self) -> Index:
        try:
            data = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError as exc:
            raise ImageError(f"{self.root} has no index.json") from exc
        except ValueError as exc:
            raise ImageError(f"{self.root}/index.json is not JSON: {exc}") from exc
        return Index.from_dict(data)

    def refs(self) -> dict[str, Descriptor]:
        """The descriptors in index.json by their ref name annotation."""
        return {
            desc.annotations[REF_NAME]: desc
            for desc in self.index().manifests
            if REF_NAME in desc.annotations
        }

    def ref(self, name: str) -> Descriptor | None:
        """The descriptor index.json holds for ref ``name`` (as :meth:`set_ref` stored it), if any."""
        return self.refs().get(name)

    def set_ref(self, name: str, desc: Descriptor) -> Descriptor:
        """Point ref ``name`` at ``desc`` in index.json (replacing an older entry of that name).

        Returns the descriptor exactly as stored, ref name annotation included, so a caller that
        writes a ref describes it the same way as one that reads it back later with :meth:`ref`.
        """
        index = self.index()
        entry = Descriptor(
            media_type=desc.media_type,
            digest=desc.digest,
            size=desc.size,
            annotations={**desc.annotations, REF_NAME: name},
            platform=desc.platform,
            artifact_type=desc.artifact_type,
        )
        kept = [d for d in index.manifests if d.annotations.get(REF_NAME) != name]
        kept.append(entry)
        kept.sort(key=lambda d: d.annotations.get(REF_NAME, ""))
        self._write_atomic(self.root / "index.json", Index(manifests=kept).to_bytes())
        return entry

    def walk(self, desc: Descriptor) -> Iterator[Descriptor]:
        """Every descriptor reachable from ``desc`` (itself first, then children, depth first)."""
        yield desc
        if desc.media_type in mediatype.INDEX_TYPES:
            index = self.read_manifest(desc)
            assert isinstance(index, Index)
            for child in index.manifests:
                yield from self.walk(child)
        elif desc.media_type in mediatype.MANIFEST_TYPES:
            manifest = self.read_manifest(desc)
            assert isinstance(manifest, Manifest)
            yield manifest.config
            yield from manifest.layers

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
