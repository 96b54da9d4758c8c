"""Referrers against distribution 2.8, which has no referrers API: the referrers tag schema."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, parse
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import attach, fallback_tag, list_referrers
from pipeline.services.distribution import LocalRegistry
from tests.support.layouts import BUNDLE, build_image, bundle_artifact
from tests.support.skopeo import skopeo_raw


def test_attach_with_tag_schema(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, top = build_image(tmp_path / "layout")
    client = Client(credentials=Credentials.anonymous())
    ref = Reference.parse(f"{registry.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    artifact = bundle_artifact(client, ref, top, b'{"bundle": 1}')

    desc = attach(client, ref, artifact)
    assert desc.digest == digests.of_bytes(artifact.to_bytes())
    assert desc.artifact_type == BUNDLE
    assert dict(desc.annotations) == dict(artifact.annotations)  # ALL annotations pulled up

    # The artifact manifest is in the registry by digest, and the fallback tag holds an OCI index.
    assert skopeo_raw(f"{registry.host}/team/app@{desc.digest}") == artifact.to_bytes()
    raw = skopeo_raw(f"{registry.host}/team/app:{fallback_tag(top.digest)}")
    index = json.loads(raw)
    assert index["mediaType"] == mediatype.OCI_INDEX
    assert index["manifests"] == [desc.to_dict()]
    assert index["manifests"][0]["artifactType"] == BUNDLE
    assert index["manifests"][0]["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"

    # Attaching the same artifact again adds no duplicate.
    attach(client, ref, artifact)
    assert [d.digest for d in list_referrers(client, ref, top.digest)] == [desc.digest]


def test_others_entries_are_kept(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, top = build_image(tmp_path / "layout")
    client = Client(credentials=Credentials.anonymous())
    ref = Reference.parse(f"{registry.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    # Another tool's referrer, recorded in the tag schema index before ours.
    theirs = bundle_artifact(client, ref, top, b"their attestation", kind="application/vnd.in-toto+json")
    theirs_data = theirs.to_bytes()
    client.put_manifest(ref.with_digest(digests.of_bytes(theirs_data)), theirs_data, mediatype.OCI_MANIFEST)
    their_entry = Descriptor(
        mediatype.OCI_MANIFEST,
        digests.of_bytes(theirs_data),
        len(theirs_data),
        annotations={"tool": "other"},
        artifact_type="application/vnd.in-toto+json",
    )
    tag = ref.with_tag(fallback_tag(top.digest))
    client.put_manifest(tag, Index(manifests=[their_entry]).to_bytes(), mediatype.OCI_INDEX)

    mine = attach(client, ref, bundle_artifact(client, ref, top, b"my bundle"))
    entries = list_referrers(client, ref, top.digest)
    assert [d.digest for d in entries] == [their_entry.digest, mine.digest]
    assert entries[0].annotations == {"tool": "other"}
    assert [d.digest for d in list_referrers(client, ref, top.digest, artifact_type=BUNDLE)] == [mine.digest]
    assert list_referrers(client, ref, top.digest, artifact_type="application/x-none") == []

    second = attach(client, ref, bundle_artifact(client, ref, top, b"my second bundle"))
    assert [d.digest for d in list_referrers(client, ref, top.digest)] == [
        their_entry.digest,
        mine.digest,
        second.digest,
    ]
    stored = parse(client.get_manifest(tag)[0])
    assert isinstance(stored, Index) and len(stored.manifests) == 3


def test_no_referrers(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, top = build_image(tmp_path / "layout")
    client = Client(credentials=Credentials.anonymous())
    ref = Reference.parse(f"{registry.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    assert list_referrers(client, ref, top.digest) == []
