"""Strict schema validation of Kubernetes manifests with kubernetes-validate (its schemas ship in the
wheel, so it runs offline): every field must be one the API knows, for Kubernetes 1.30 (the oldest
version the recipes support) and the newest version the installed kubernetes-validate offers."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # it ships no type information

OLDEST = "1.30.0"


def versions() -> tuple[str, str]:
    return OLDEST, f"{kubernetes_validate.latest_version()}.0"


def errors(document: dict[str, Any]) -> list[str]:
    """One line per version that rejects ``document`` (empty: valid for every version)."""
    found = []
    for version in versions():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            found.append(f"Kubernetes {version}: {document.get('kind')} {path}: {exc.message}")
    return found
