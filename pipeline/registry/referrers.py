"""Referrers: artifacts (signatures, attestations) that point at an image through ``subject``.

Where the registry has the OCI referrers API (``GET /v2/<name>/referrers/<digest>``, answered with an
image index), pushing the artifact manifest is all it takes. Where it has not (Docker Hub,
distribution 2.8), the referrers tag schema applies: the tag ``<alg>-<hex>`` of the subject holds an
OCI index of descriptors of its referrers. Each descriptor carries the artifact's ``artifactType``
(else its config's mediaType) and ALL its annotations; entries written by other tools are kept, an
entry for the same digest is never duplicated, and the index is read back after writing (a writer
racing with us may have replaced it: then the merge is done again).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence

from pipeline.errors import ImageError, LimitError, RegistryError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.registry.tags import next_link

WRITE_ATTEMPTS = 5
MAX_PAGES = 1000
MAX_LISTED = 20_000  # referrers of one digest listed through the API (a tag's index is bounded at 4 MiB)
CREATED = "org.opencontainers.image.created"


def fallback_tag(subject_digest: str) -> str:
    """The referrers tag schema's tag for a subject: ``sha256:abc...`` -> ``sha256-abc...``."""
    digests.validate(subject_digest)
    return subject_digest.replace(":", "-", 1)


def artifact_descriptor(artifact: Manifest, data: bytes) -> Descriptor:
    """The descriptor of ``artifact`` as a referrers index lists it."""
    return Descriptor(
        media_type=artifact.media_type,
        digest=digests.of_bytes(data),
        size=len(data),
        annotations=dict(artifact.annotations),
        artifact_type=artifact.artifact_type or artifact.config.media_type,
    )


def _api_referrers(client: Client, ref: Reference, subject_digest: str) -> list[Descriptor] | None:
    """The referrers API's answer, every page of it (``Link: rel="next"``, as for the tag list), or
    None when the registry has no referrers API."""
    base = Reference(ref.registry, ref.repository)
    url: str | None = client.url(base, f"referrers/{subject_digest}")
    what = f"list referrers of {subject_digest} in {base.repo_str}"
    found: list[Descriptor] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise RegistryError(f"{what}: more than {MAX_PAGES} pages", hint="the registry keeps paging")
        response = client.request("GET", base, url, headers={"Accept": mediatype.OCI_INDEX}, what=what)
        with response:
            if response.status_code != 200:
                if pages == 1 and response.status_code in (400, 404, 405, 406, 501):
                    return None
                raise client.error(what, response)
            if response.headers.get("Content-Type", "").split(";")[0].strip() != mediatype.OCI_INDEX:
                if pages == 1:
                    return None
                raise RegistryError(f"{what}: page {pages} is not an OCI image index")
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            url = next_link(response)
        if not isinstance(body, dict) or body.get("mediaType", mediatype.OCI_INDEX) != mediatype.OCI_INDEX:
            if pages == 1:
                return None
            raise RegistryError(f"{what}: page {pages} is not an OCI image index")
        try:
            found += Index.from_dict(body).manifests
        except ImageError as exc:
            raise RegistryError(f"{what}: {exc.message}") from None
        if len(found) > MAX_LISTED:
            raise LimitError(
                f"{what}: more than {MAX_LISTED} referrers; the client lists no more",
                hint="someone attached that many artifacts to this digest: remove what is not yours",
            )
    return found


def _tag_referrers(client: Client, ref: Reference, subject_digest: str) -> tuple[list[Descriptor], bool]:
    """The referrers in the fallback tag's index, and whether the tag exists."""
    tagged = Reference(ref.registry, ref.repository).with_tag(fallback_tag(subject_digest))
    found = client.find_manifest(tagged)
    if found is None:
        return [], False
    data, desc = found
    item = parse(data, desc.media_type)
    if not isinstance(item, Index):
        raise RegistryError(
            f"{tagged} holds an image manifest, not a referrers index",
            hint="something other than the referrers tag schema uses that tag; remove it",
        )
    return list(item.manifests), True


def list_referrers(
    client: Client, ref: Reference, subject_digest: str, artifact_type: str | None = None
) -> list[Descriptor]:
    """The referrers of ``subject_digest`` in ``ref``'s repository (optionally of one artifactType)."""
    digests.validate(subject_digest)
    found = _api_referrers(client, ref, subject_digest)
    if found is None:
        found, _ = _tag_referrers(client, ref, subject_digest)
    unique: dict[str, Descriptor] = {}
    for desc in found:
        unique.setdefault(desc.digest, desc)
    result = list(unique.values())
    if artifact_type is not None:
        result = [desc for desc in result if desc.artifact_type == artifact_type]
    return result


def newest_first(found: Sequence[Descriptor]) -> list[Descriptor]:
    """``found`` newest first: by the ``org.opencontainers.image.created`` annotation (RFC 3339)
    where there is one, then the later in the list (a referrers tag's index is appended to). Neither
    is authenticated: this only decides which referrers a bounded reader looks at first."""
    return sorted(reversed(found), key=_created, reverse=True)


def _created(desc: Descriptor) -> float:
    value = desc.annotations.get(CREATED, "")
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def attach(client: Client, ref: Reference, artifact: Manifest) -> Descriptor:
    """Push ``artifact`` (whose ``subject`` is set) and record it as a referrer of its subject."""
    if artifact.subject is None:
        raise RegistryError("the artifact has no subject: nothing to attach it to")
    base = Reference(ref.registry, ref.repository)
    subject = artifact.subject.digest
    if artifact.config.digest == mediatype.EMPTY_DIGEST and not client.blob_exists(
        base, mediatype.EMPTY_DIGEST
    ):
        client.upload_blob(base, mediatype.EMPTY_JSON)
    for blob in (artifact.config, *artifact.layers):
        if not client.blob_exists(base, blob.digest):
            raise RegistryError(
                f"blob {blob.digest} of the artifact is not in {base.repo_str}",
                hint="upload the artifact's blobs (upload_blob) before attaching it",
            )
    data = artifact.to_bytes()
    desc = artifact_descriptor(artifact, data)
    _, response = client.put_manifest_response(base.with_digest(desc.digest), data, artifact.media_type)
    if response.headers.get("OCI-Subject") == subject:
        # The registry indexes referrers itself: check that it lists this one.
        listed = _api_referrers(client, base, subject)
        if listed is not None and any(d.digest == desc.digest for d in listed):
            return desc
    for _ in range(WRITE_ATTEMPTS):
        entries, _exists = _tag_referrers(client, base, subject)
        kept = [entry for entry in entries if entry.digest != desc.digest]
        index = Index(manifests=[*kept, desc])
        tag = base.with_tag(fallback_tag(subject))
        client.put_manifest(tag, index.to_bytes(), mediatype.OCI_INDEX)
        entries, _exists = _tag_referrers(client, base, subject)
        mine = [entry for entry in entries if entry.digest == desc.digest]
        if len(mine) == 1:
            return mine[0]
    raise RegistryError(
        f"could not record {desc.digest} in the referrers index {base.repo_str}:{fallback_tag(subject)} "
        f"after {WRITE_ATTEMPTS} attempts (another writer keeps replacing it)"
    )
