"""The CA bundle the images carry at /kaniko/ssl/certs/ca-certificates.crt.

The Dockerfile takes it from Debian's ca-certificates in a `certs` stage, which changes whenever
Debian's package does. Here it comes from a pinned, reproducible source instead: Mozilla's CA bundle
exactly as the `certifi` wheel ships it (``certifi/cacert.pem`` of certifi CERTIFI_VERSION, pinned in
pyproject.toml), checked against a pinned size and sha256, so every machine puts the same bytes into
the image.

Some environments append their own CA (a TLS-intercepting proxy's) to the installed cacert.pem. The
wheel's bytes are then still the file's first CERTIFI_SIZE bytes: those are taken when they match the
pinned sha256, and nothing appended ever reaches an image. To move the pin: install the new certifi,
update the three constants from its wheel's RECORD, and say so in the commit.
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
CERTIFI_SIZE = 236095


@dataclass(frozen=True)
class Bundle:
    data: bytes
    digest: str  # sha256:...
    origin: str


def _normalized(version: str) -> str:
    return ".".join(str(int(part)) if part.isdigit() else part for part in version.split("."))


def pinned() -> Bundle:
    """certifi's cacert.pem as its wheel ships it, verified against the pin."""
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc}", hint=hint) from exc
    shipped = data[:CERTIFI_SIZE]
    digest = hashlib.sha256(shipped).hexdigest()
    if len(shipped) != CERTIFI_SIZE or digest != CERTIFI_SHA256:
        raise ImageError(
            f"{path} does not hold certifi {CERTIFI_VERSION}'s cacert.pem (sha256 {CERTIFI_SHA256}): "
            "it was changed after installation",
            hint="reinstall it: pip install --force-reinstall certifi==" + CERTIFI_VERSION,
        )
    origin = f"certifi {CERTIFI_VERSION} cacert.pem"
    if len(data) > CERTIFI_SIZE:
        origin += f" (as shipped; {len(data) - CERTIFI_SIZE} bytes appended locally were left out)"
    return Bundle(shipped, "sha256:" + digest, origin)


def from_file(path: Path) -> Bundle:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the CA bundle {path}: {exc}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ImageError(f"{path} is not a PEM CA bundle (no certificate in it)")
    return Bundle(data, "sha256:" + hashlib.sha256(data).hexdigest(), str(path))
