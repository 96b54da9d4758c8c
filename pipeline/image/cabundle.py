"""The CA bundle the images carry at /kaniko/ssl/certs/ca-certificates.crt.

The Dockerfile takes it from Debian's ca-certificates in a `certs` stage, which changes whenever
Debian's package does. Here it comes from a pinned, reproducible source instead: Mozilla's CA bundle
as packaged in the `certifi` wheel (``certifi/cacert.pem``), checked against a pinned version and
sha256, so every machine puts the same bytes into the image. To move the pin: install the new
certifi, update CERTIFI_VERSION and CERTIFI_SHA256 together, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ImageError

CERTIFI_VERSION = "2026.5.20"
CERTIFI_SHA256 = "7cef540c6af3bf0a3c7d0070bd3fd7aae34f8aa805b408d1c27a01c8aeb305df"


@dataclass(frozen=True)
class Bundle:
    path: Path
    digest: str  # sha256:...
    origin: str


def _normalized(version: str) -> str:
    return ".".join(str(int(part)) if part.isdigit() else part for part in version.split("."))


def pinned() -> Bundle:
    """certifi's cacert.pem, verified against the pin."""
    spec = importlib.util.find_spec("certifi")
    try:
        version = importlib.metadata.version("certifi")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    hint = f"pip install certifi=={CERTIFI_VERSION} (the CA bundle is pinned to it), or pass --ca-bundle FILE"
    if spec is None or not spec.submodule_search_locations:
        raise ImageError("the certifi package (the pinned CA bundle) is not installed", hint=hint)
    path = Path(next(iter(spec.submodule_search_locations))) / "cacert.pem"
    if _normalized(version) != _normalized(CERTIFI_VERSION):
        raise ImageError(
            f"certifi {version} is installed, but the CA bundle is pinned to certifi {CERTIFI_VERSION}",
            hint=hint,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CERTIFI_SHA256:
        raise ImageError(f"{path} has sha256 {digest}, not the pinned {CERTIFI_SHA256}", hint=hint)
    return Bundle(path, "sha256:" + digest, f"certifi {CERTIFI_VERSION} cacert.pem")


def from_file(path: Path) -> Bundle:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the CA bundle {path}: {exc}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ImageError(f"{path} is not a PEM CA bundle (no certificate in it)")
    return Bundle(path, "sha256:" + hashlib.sha256(data).hexdigest(), str(path))
