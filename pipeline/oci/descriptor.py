"""Descriptors and platforms (OCI image spec, descriptor.md and image-index.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ImageError
from pipeline.oci import digests

# Go's GOARCH names are the OCI architecture names; variants as `docker buildx` and ko record them.
_DEFAULT_VARIANT = {"arm64": "v8"}


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError(f"platform {text!r} is not os/arch or os/arch/variant (e.g. linux/arm64)")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    def matches(self, other: Platform) -> bool:
        """True when ``other`` (from a manifest) satisfies this (asked-for) platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        return self.variant == (other.variant or _DEFAULT_VARIANT.get(other.architecture))

    def to_dict(self) -> dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), data.get("variant"))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        digests.validate(self.digest)
        if self.size < 0:
            raise ImageError(f"descriptor {self.digest} has a negative size")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.platform is not None:
            data["platform"] = self.platform.to_dict()
        if self.annotations:
            data["annotations"] = dict(sorted(self.annotations.items()))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Descriptor:
        """A descriptor from its JSON; anything not of the spec's types is an ImageError."""
        if not isinstance(data, Mapping):
            raise ImageError(f"malformed descriptor: {type(data).__name__}, not a JSON object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise ImageError(f"malformed descriptor: mediaType and digest must be strings ({digest!r})")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ImageError(f"malformed descriptor {digest!r}: size {size!r} is not an integer")
        platform = data.get("platform")
        if platform is not None and not (
            isinstance(platform, Mapping)
            and all(isinstance(platform.get(k, ""), str) for k in ("os", "architecture"))
            and isinstance(platform.get("variant"), str | None)
        ):
            raise ImageError(f"malformed descriptor {digest!r}: platform {platform!r} is not os/architecture")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=string_map(data.get("annotations"), f"descriptor {digest!r}"),
            platform=Platform.from_dict(platform) if platform is not None else None,
            artifact_type=optional_string(data.get("artifactType"), f"descriptor {digest!r}"),
        )


def string_map(value: Any, where: str) -> dict[str, str]:
    """Annotations: absent/null, or an object of strings to strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ImageError(f"malformed {where}: annotations must map strings to strings")
    return dict(value)


def optional_string(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ImageError(f"malformed {where}: artifactType {value!r} is not a string")
