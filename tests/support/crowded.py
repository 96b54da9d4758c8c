"""A digest crowded with referrers, in a real registry: what a hostile writer can attach to an image.

``crowd()`` attaches to a subject, through the referrers tag schema (distribution 2.8 has no referrers
API): ``count`` distinct artifact manifests whose bundle layer is junk (no created annotation, as
other tools write them), a "bundle" of ``big`` bytes (a sparse file: zeros) whose descriptor says so,
and a referrer that names the same big blob with a descriptor that says 2,000 bytes. The referrers
already there (a genuine signature) stay in the index, after the junk; the two big ones are marked
newest (created tomorrow), so a bounded reader meets them first.

The junk manifests are written straight into the registry's storage, as distribution's filesystem
driver keeps a pushed manifest (its blob and the repository's revision link), and so is the big blob
(its blob and the repository's layer link): 10,000 PUTs over HTTP took about 74 s of both cores, this
takes a few seconds, and the registry serves them as it serves pushed ones. The two big referrers and
the referrers index are pushed.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import CREATED, artifact_descriptor, fallback_tag, list_referrers
from pipeline.signing import attach
from pipeline.signing.bundles import BUNDLE_MEDIA_TYPE

JUNK = b'{"mediaType": "not a sigstore bundle"}'


@dataclass(frozen=True)
class Crowd:
    junk: int  # junk referrers attached
    big: Descriptor  # the big blob (its real size)
    big_referrer: str  # the referrer whose descriptor says the big size
    liar_referrer: str  # the referrer whose descriptor says 2,000 bytes for the big blob


def _sparse_zeros(path: Path, size: int) -> str:
    """A sparse file of ``size`` zero bytes at ``path``; its digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    sha = hashlib.sha256()
    block = bytes(1 << 20)
    left = size
    while left:
        step = min(left, len(block))
        sha.update(block[:step])
        left -= step
    return "sha256:" + sha.hexdigest()


def _referrer(subject: Descriptor, layer: Descriptor, annotations: dict[str, str]) -> Manifest:
    return Manifest(
        config=attach.EMPTY_CONFIG,
        layers=[layer],
        annotations=annotations,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=BUNDLE_MEDIA_TYPE,
    )


def _put(client: Client, repo: Reference, artifact: Manifest) -> Descriptor:
    data = artifact.to_bytes()
    client.put_manifest(repo.with_digest(digests.of_bytes(data)), data, artifact.media_type)
    return artifact_descriptor(artifact, data)


def _v2(storage: Path) -> Path:
    return storage / "docker" / "registry" / "v2"


def _blob_data(storage: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return _v2(storage) / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"


def _link(storage: Path, repository: str, kind: str, digest: str) -> None:
    """The repository's link to a blob (``_layers``) or to a manifest (``_manifests/revisions``)."""
    link = (
        _v2(storage) / "repositories" / repository / kind / "sha256" / digest.removeprefix("sha256:") / "link"
    )
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(digest)


def _store(storage: Path, repository: str, artifact: Manifest) -> Descriptor:
    """Keep ``artifact`` in distribution's filesystem storage as a push of it by digest would."""
    data = artifact.to_bytes()
    digest = digests.of_bytes(data)
    blob = _blob_data(storage, digest)
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    _link(storage, repository, "_manifests/revisions", digest)
    return artifact_descriptor(artifact, data)


def crowd(
    client: Client,
    repo: Reference,
    subject: Descriptor,
    *,
    count: int,
    big: int,
    storage: Path,
) -> Crowd:
    """Crowd ``subject`` in ``repo``, served by a registry whose filesystem storage is ``storage``."""
    base = Reference(repo.registry, repo.repository)
    client.upload_blob(base, mediatype.EMPTY_JSON)
    junk_layer = Descriptor(BUNDLE_MEDIA_TYPE, client.upload_blob(base, JUNK), len(JUNK))
    zeros = _v2(storage) / "big.bundle"  # stored as a push would, still sparse (1 GiB over HTTP took ~10 s)
    big_desc = Descriptor(BUNDLE_MEDIA_TYPE, _sparse_zeros(zeros, big), big)
    data = _blob_data(storage, big_desc.digest)
    data.parent.mkdir(parents=True, exist_ok=True)
    zeros.rename(data)
    _link(storage, base.repository, "_layers", big_desc.digest)
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    junk = [
        _store(storage, base.repository, _referrer(subject, junk_layer, {"junk": str(n)}))
        for n in range(count)
    ]
    liar_layer = Descriptor(BUNDLE_MEDIA_TYPE, big_desc.digest, 2000)
    big_ref = _put(client, base, _referrer(subject, big_desc, {CREATED: tomorrow, "big": "honest"}))
    liar_ref = _put(client, base, _referrer(subject, liar_layer, {CREATED: tomorrow, "big": "liar"}))
    existing = list_referrers(client, base, subject.digest)
    index = Index(manifests=[*junk, *existing, big_ref, liar_ref])
    client.put_manifest(base.with_tag(fallback_tag(subject.digest)), index.to_bytes(), mediatype.OCI_INDEX)
    return Crowd(count, big_desc, big_ref.digest, liar_ref.digest)
