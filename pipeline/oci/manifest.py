"""Image manifests and image indexes (OCI image spec), serialised deterministically."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ImageError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor, Platform, optional_string, string_map

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # registries may refuse larger manifests; the spec says 4 MiB


def canonical_json(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, no insignificant white space, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _with_optional_fields(
    data: dict[str, Any],
    artifact_type: str | None,
    subject: Descriptor | None,
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """Add the fields that a manifest and an index share and that are left out when empty."""
    if artifact_type:
        data["artifactType"] = artifact_type
    if subject is not None:
        data["subject"] = subject.to_dict()
    if annotations:
        data["annotations"] = dict(annotations)
    return data


def _optional_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The shared optional fields of a manifest or an index, read from its JSON."""
    subject = data.get("subject")
    return {
        "annotations": string_map(data.get("annotations"), "manifest"),
        "subject": Descriptor.from_dict(subject) if subject is not None else None,
        "artifact_type": optional_string(data.get("artifactType"), "manifest"),
    }


def _descriptors(value: Any, field_name: str) -> list[Descriptor]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImageError(f"malformed manifest: {field_name} is not a list")
    return [Descriptor.from_dict(item) for item in value]


def _media_type(data: Mapping[str, Any], default: str) -> str:
    value = data.get("mediaType")
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ImageError(f"malformed manifest: mediaType {value!r} is not a string")
    return value


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: Sequence[Descriptor]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    media_type: str = mediatype.OCI_MANIFEST

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        return _with_optional_fields(data, self.artifact_type, self.subject, self.annotations)

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        if "config" not in data:
            raise ImageError("malformed image manifest: missing 'config'")
        return cls(
            config=Descriptor.from_dict(data["config"]),
            layers=_descriptors(data.get("layers"), "layers"),
            media_type=_media_type(data, mediatype.OCI_MANIFEST),
            **_optional_fields(data),
        )


@dataclass(frozen=True)
class Index:
    manifests: Sequence[Descriptor]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    media_type: str = mediatype.OCI_INDEX

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [desc.to_dict() for desc in self.manifests],
        }
        return _with_optional_fields(data, self.artifact_type, self.subject, self.annotations)

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Index:
        return cls(
            manifests=_descriptors(data.get("manifests"), "manifests"),
            media_type=_media_type(data, mediatype.OCI_INDEX),
            **_optional_fields(data),
        )


def parse(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse manifest bytes; the mediaType field (or the given one) says which kind."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ImageError(f"manifest of {len(data)} bytes is over the 4 MiB limit")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ImageError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ImageError("manifest is not a JSON object")
    kind = obj.get("mediaType") or media_type
    if not isinstance(kind, str | None):
        raise ImageError(f"manifest mediaType {kind!r} is not a string")
    if kind in mediatype.INDEX_TYPES or (kind is None and "manifests" in obj):
        return Index.from_dict(obj)
    if kind in mediatype.MANIFEST_TYPES or (kind is None and "config" in obj):
        return Manifest.from_dict(obj)
    raise ImageError(f"unsupported manifest media type {kind!r}")


def descriptor_of(
    manifest: Manifest | Index,
    data: bytes | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    platform: Platform | None = None,
) -> Descriptor:
    """The descriptor that points at ``manifest`` (serialised as ``data`` if given)."""
    body = data if data is not None else manifest.to_bytes()
    return Descriptor(
        media_type=manifest.media_type,
        digest=digests.of_bytes(body),
        size=len(body),
        annotations=dict(annotations or {}),
        platform=platform,
        artifact_type=manifest.artifact_type,
    )
