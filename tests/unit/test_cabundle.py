"""The pinned CA bundle: the bytes certifi's wheel ships, whatever was appended to the installed copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.errors import ImageError
from pipeline.image import cabundle


def test_pinned_bundle_is_the_wheels_bytes() -> None:
    bundle = cabundle.pinned()
    assert len(bundle.data) == cabundle.CERTIFI_SIZE
    assert bundle.digest == "sha256:" + hashlib.sha256(bundle.data).hexdigest()
    assert bundle.digest == "sha256:" + cabundle.CERTIFI_SHA256
    assert bundle.data.startswith(b"\n# Issuer") or b"-----BEGIN CERTIFICATE-----" in bundle.data


def test_an_explicit_bundle_must_be_pem(tmp_path: Path) -> None:
    good = tmp_path / "ca.pem"
    good.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert cabundle.from_file(good).data == good.read_bytes()
    bad = tmp_path / "not.pem"
    bad.write_text("hello")
    with pytest.raises(ImageError, match="not a PEM CA bundle"):
        cabundle.from_file(bad)
    with pytest.raises(ImageError, match="cannot read the CA bundle"):
        cabundle.from_file(tmp_path / "missing.pem")
