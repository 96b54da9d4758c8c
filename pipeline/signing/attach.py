"""Attaching signatures to an image in its registry, where cosign and other verifiers look.

- cosign v3: the bundle is a blob, referred to by an artifact manifest (artifactType = the bundle
  media type, the empty config, annotations naming the content and predicate type) whose subject is
  the signed index or manifest; recorded through the referrers API or the referrers tag schema
  (:func:`pipeline.registry.referrers.attach`).
- cosign v2: the ``sha256-<hex>.sig`` tag, an image whose layers are simple-signing payloads with the
  signature, certificate and Rekor bundle as annotations. Signing again replaces the layer that the
  same identity wrote for the same payload; layers from other signers are kept.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pipeline.errors import ImageError, RegistryError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Manifest, canonical_json, parse
from pipeline.registry import referrers
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.signing import bundles, statement

CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
EMPTY_CONFIG = Descriptor(mediatype.OCI_EMPTY, mediatype.EMPTY_DIGEST, len(mediatype.EMPTY_JSON))
MAX_REFERRERS = 128  # referrers of one digest examined, newest first (each costs two GETs and a check)
MAX_BUNDLE_BYTES = 16 << 20  # a bundle's size by its descriptor (an SBOM's is well under 1 MiB)


def bundle_artifact(
    subject: Descriptor, bundle_json: bytes, predicate_type: str = statement.COSIGN_SIGN_PREDICATE
) -> Manifest:
    """The artifact manifest that refers a cosign v3 bundle (a signature, or an attestation of
    ``predicate_type``) to ``subject``. It is made of the bundle alone: the same bundle, attached again
    (signing again, a release's copies), is the same referrer, whenever it is attached."""
    layer = Descriptor(bundles.BUNDLE_MEDIA_TYPE, digests.of_bytes(bundle_json), len(bundle_json))
    annotations = {CONTENT_ANNOTATION: "dsse-envelope", PREDICATE_ANNOTATION: predicate_type}
    created = bundle_created(bundle_json)
    if created is not None:  # as cosign writes it; a bounded reader looks at the newest referrers first
        annotations[referrers.CREATED] = created
    return Manifest(
        config=EMPTY_CONFIG,
        layers=[layer],
        annotations=annotations,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=bundles.BUNDLE_MEDIA_TYPE,
    )


def bundle_created(bundle_json: bytes) -> str | None:
    """When the bundle says it was signed, for the referrer's ``org.opencontainers.image.created``: the
    earliest ``integratedTime`` of its transparency log entries, as RFC 3339 in UTC to the second; None
    when it names none. Not verified here (verification decides what a time proves): the annotation
    only orders referrers for a bounded reader (pipeline/registry/referrers.py)."""
    try:
        entries = json.loads(bundle_json)["verificationMaterial"]["tlogEntries"]
        seconds = min(int(entry["integratedTime"]) for entry in entries)
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (ValueError, TypeError, KeyError, OverflowError, OSError):  # min() of none is a ValueError
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def attach_bundle(
    client: Client,
    ref: Reference,
    subject: Descriptor,
    bundle_json: bytes,
    predicate_type: str = statement.COSIGN_SIGN_PREDICATE,
) -> Descriptor:
    """Push ``bundle_json`` and its artifact manifest; returns the referrer's descriptor."""
    base = Reference(ref.registry, ref.repository)
    if not client.blob_exists(base, digests.of_bytes(bundle_json), push=True):
        client.upload_blob(base, bundle_json)
    return referrers.attach(client, base, bundle_artifact(subject, bundle_json, predicate_type))


def signature_tag(digest: str) -> str:
    """cosign v2's tag for the signatures of ``digest``: ``sha256-<hex>.sig``."""
    return referrers.fallback_tag(digest) + ".sig"


def _signer_key(annotations: Mapping[str, str]) -> str | None:
    """Who signed a `.sig` layer (certificate SANs and issuer), to recognise one's own layer."""
    from cryptography import x509

    pem = annotations.get(bundles.COSIGN_CERTIFICATE_ANNOTATION)
    if not pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sorted(str(name.value) for name in san)
        issuer = [
            ext.value.value.decode("utf-8", "replace")
            for ext in cert.extensions
            if ext.oid.dotted_string == "1.3.6.1.4.1.57264.1.1"
        ]
    except (ValueError, x509.ExtensionNotFound, AttributeError):
        return None
    return json.dumps([names, issuer])


def _sig_config(layers: Sequence[Descriptor]) -> bytes:
    """The image config cosign writes for a `.sig` image: diff_ids are the payload digests."""
    return canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        }
    )


@dataclass(frozen=True)
class SigTagResult:
    tag: str
    digest: str
    layers: int


def attach_simple_signing(
    client: Client, ref: Reference, digest: str, simple: bundles.SimpleSigning
) -> SigTagResult:
    """Add (or replace this signer's) simple-signing layer in the image's `.sig` tag."""
    base = Reference(ref.registry, ref.repository)
    tag = base.with_tag(signature_tag(digest))
    annotations = bundles.cosign_v2_annotations(simple)
    payload_digest = digests.of_bytes(simple.payload)
    new_layer = Descriptor(
        statement.SIMPLE_SIGNING_MEDIA_TYPE, payload_digest, len(simple.payload), annotations=annotations
    )
    layers: list[Descriptor] = []
    found = client.find_manifest(tag)
    if found is not None:
        existing = parse(found[0], found[1].media_type)
        if not isinstance(existing, Manifest):
            raise RegistryError(
                f"{tag} holds an image index, not a cosign signature image",
                hint="something other than cosign uses that tag; remove it",
            )
        mine = _signer_key(annotations)
        for layer in existing.layers:
            same_payload = layer.digest == payload_digest
            if same_payload and (mine is None or _signer_key(layer.annotations) == mine):
                continue  # this signer's earlier signature of the same payload: replaced below
            layers.append(layer)
    layers.append(new_layer)
    if not client.blob_exists(base, payload_digest, push=True):
        client.upload_blob(base, simple.payload)
    return _put_sig_image(client, tag, layers)


def copy_simple_signing(
    client: Client, source: Reference, target: Reference, digest: str, layers: Sequence[Descriptor]
) -> SigTagResult | None:
    """Add ``layers`` (`.sig` layers of ``digest`` in ``source``'s repository, their payloads copied
    from there) to the `.sig` image of ``digest`` in ``target``'s repository; None when none is new."""
    base = Reference(target.registry, target.repository)
    tag = base.with_tag(signature_tag(digest))
    kept: list[Descriptor] = []
    found = client.find_manifest(tag)
    if found is not None:
        existing = parse(found[0], found[1].media_type)
        kept = list(existing.layers) if isinstance(existing, Manifest) else []
    have = {(layer.digest, _signer_key(layer.annotations)) for layer in kept}
    new = [layer for layer in layers if (layer.digest, _signer_key(layer.annotations)) not in have]
    if not new:
        return None
    for layer in new:
        if not client.blob_exists(base, layer.digest, push=True):
            client.upload_blob(
                base, client.get_blob(Reference(source.registry, source.repository), layer.digest)
            )
    return _put_sig_image(client, tag, [*kept, *new])


def _put_sig_image(client: Client, tag: Reference, layers: Sequence[Descriptor]) -> SigTagResult:
    base = Reference(tag.registry, tag.repository)
    config = _sig_config(layers)
    config_digest = digests.of_bytes(config)
    if not client.blob_exists(base, config_digest, push=True):
        client.upload_blob(base, config)
    manifest = Manifest(
        config=Descriptor(mediatype.OCI_CONFIG, config_digest, len(config)), layers=list(layers)
    )
    pushed = client.put_manifest(tag, manifest.to_bytes(), manifest.media_type)
    return SigTagResult(tag=tag.tag or "", digest=pushed, layers=len(layers))


@dataclass(frozen=True)
class FoundBundle:
    source: str  # the referrer manifest's digest
    data: bytes | None
    problem: str | None = None


def find_bundles(client: Client, ref: Reference, digest: str) -> list[FoundBundle]:
    """Every bundle :func:`iter_bundles` finds, in a list."""
    return list(iter_bundles(client, ref, digest))


def iter_bundles(client: Client, ref: Reference, digest: str) -> Iterator[FoundBundle]:
    """The Sigstore bundles attached to ``digest`` as referrers (each, or why it is unreadable), one
    at a time, so that only one bundle is in memory.

    Every referrer manifest is opened: a fallback tag's descriptors may carry the wrong artifactType
    and no annotations (cosign's own writer did), so they decide nothing. Referrers that hold no
    bundle (other artifacts) are left out. Bounded: the newest ``MAX_REFERRERS`` referrers are
    examined (the rest are named as not examined), and a bundle over ``MAX_BUNDLE_BYTES`` by its
    descriptor is never fetched.
    """
    base = Reference(ref.registry, ref.repository)
    listed = referrers.list_referrers(client, base, digest)
    examined = referrers.newest_first(listed)[:MAX_REFERRERS]
    for desc in examined:
        yield from _bundles_of(client, base, digest, desc)
    if len(listed) > len(examined):
        left = len(listed) - len(examined)
        yield FoundBundle(
            f"{left} older referrer(s)",
            None,
            f"not examined: {len(listed)} referrers are attached to {digest}, and only the newest "
            f"{MAX_REFERRERS} are (the limit per digest)",
        )


def _bundles_of(client: Client, base: Reference, digest: str, desc: Descriptor) -> Iterator[FoundBundle]:
    try:
        data, _ = client.get_manifest(base.with_digest(desc.digest))
        artifact = parse(data)
        if not isinstance(artifact, Manifest):
            return
        if artifact.subject is None or artifact.subject.digest != digest:
            yield FoundBundle(desc.digest, None, "the referrer's subject is another digest")
            return
        for layer in artifact.layers:
            if layer.media_type != bundles.BUNDLE_MEDIA_TYPE:
                continue  # another kind of artifact
            if layer.size > MAX_BUNDLE_BYTES:
                yield FoundBundle(desc.digest, None, _too_big(layer))
                continue
            yield FoundBundle(desc.digest, client.get_blob(base, layer.digest, size=layer.size))
    except (RegistryError, ImageError) as exc:
        yield FoundBundle(desc.digest, None, f"cannot read it: {exc.message}")


def _too_big(layer: Descriptor) -> str:
    return (
        f"its bundle {layer.digest} is {layer.size} bytes by its descriptor, over the "
        f"{MAX_BUNDLE_BYTES >> 20} MiB a bundle may have: not fetched"
    )
