"""A digest crowded with referrers, in a real registry: what a hostile writer can attach to an image.

``crowd()`` attaches to a subject, through the referrers tag schema (distribution 2.8 has no referrers
API): ``count`` distinct artifact manifests whose bundle layer is junk (no created annotation, as
other tools write them), a "bundle" of ``big`` bytes (a sparse file: zeros) whose descriptor says so,
and a referrer that names the same big blob with a descriptor that says 2,000 bytes. The referrers
already there (a genuine signature) stay in the index, after the junk; the two big ones are marked
newest (created tomorrow), so a bounded reader meets them first.
"""

from __future__ import annotations

import datetime
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest
from pipeline.registry.body import FileBody
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


def _zeros(path: Path, size: int) -> str:
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


def crowd(client: Client, repo: Reference, subject: Descriptor, *, count: int, big: int, work: Path) -> Crowd:
    base = Reference(repo.registry, repo.repository)
    client.upload_blob(base, mediatype.EMPTY_JSON)
    junk_layer = Descriptor(BUNDLE_MEDIA_TYPE, client.upload_blob(base, JUNK), len(JUNK))
    path = work / "big.bundle"
    big_desc = Descriptor(BUNDLE_MEDIA_TYPE, _zeros(path, big), big)
    client.ensure_blob(base, big_desc.digest, big, FileBody(path))
    path.unlink()
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    artifacts = [_referrer(subject, junk_layer, {"junk": str(n)}) for n in range(count)]
    with ThreadPoolExecutor(8) as pool:
        junk = list(pool.map(lambda artifact: _put(client, base, artifact), artifacts))
    liar_layer = Descriptor(BUNDLE_MEDIA_TYPE, big_desc.digest, 2000)
    big_ref = _put(client, base, _referrer(subject, big_desc, {CREATED: tomorrow, "big": "honest"}))
    liar_ref = _put(client, base, _referrer(subject, liar_layer, {CREATED: tomorrow, "big": "liar"}))
    existing = list_referrers(client, base, subject.digest)
    index = Index(manifests=[*junk, *existing, big_ref, liar_ref])
    client.put_manifest(base.with_tag(fallback_tag(subject.digest)), index.to_bytes(), mediatype.OCI_INDEX)
    return Crowd(count, big_desc, big_ref.digest, liar_ref.digest)
