"""Pure helpers of the registry client: referrers descriptors and tags, upload URLs, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ImageError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Manifest
from pipeline.registry.body import FileBody
from pipeline.registry.referrers import artifact_descriptor, fallback_tag
from pipeline.registry.transport import _short
from pipeline.registry.upload import _with_query

SUBJECT = "sha256:" + "ab" * 32
LAYER = Descriptor("application/vnd.dev.sigstore.bundle.v0.3+json", "sha256:" + "cd" * 32, 10)
EMPTY = Descriptor(mediatype.OCI_EMPTY, mediatype.EMPTY_DIGEST, 2)


def test_fallback_tag() -> None:
    assert fallback_tag(SUBJECT) == "sha256-" + "ab" * 32
    with pytest.raises(ImageError):
        fallback_tag("sha256:short")


def test_artifact_descriptor_pulls_up_type_and_all_annotations() -> None:
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope", "a": "1", "b": "2"}
    artifact = Manifest(
        config=EMPTY,
        layers=[LAYER],
        annotations=annotations,
        subject=Descriptor(mediatype.OCI_INDEX, SUBJECT, 100),
        artifact_type="application/vnd.dev.sigstore.bundle.v0.3+json",
    )
    data = artifact.to_bytes()
    desc = artifact_descriptor(artifact, data)
    assert desc.artifact_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert dict(desc.annotations) == annotations
    assert desc.size == len(data) and desc.media_type == mediatype.OCI_MANIFEST


def test_artifact_type_falls_back_to_config_media_type() -> None:
    config = Descriptor("application/vnd.example.sig.config+json", "sha256:" + "ef" * 32, 5)
    artifact = Manifest(config=config, layers=[LAYER], subject=Descriptor(mediatype.OCI_INDEX, SUBJECT, 1))
    assert artifact_descriptor(artifact, artifact.to_bytes()).artifact_type == config.media_type


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://h/v2/a/blobs/uploads/u1", "http://h/v2/a/blobs/uploads/u1?digest=sha256%3Aab"),
        ("http://h/u?_state=x%2By&n=1", "http://h/u?_state=x%2By&n=1&digest=sha256%3Aab"),
    ],
)
def test_upload_url_keeps_its_query(location: str, expected: str) -> None:
    assert _with_query(location, digest="sha256:ab") == expected


def test_file_body_size(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    assert FileBody(path).size() == 10
    assert FileBody(path, offset=4).size() == 6
    assert FileBody(path, offset=4, length=3).size() == 3


def test_error_text_hides_signed_queries() -> None:
    text = _short(ValueError("GET http://storage/bucket/x?X-Amz-Signature=secret failed"))
    assert text == "ValueError: GET http://storage/bucket/x?... failed"
