"""`invoke verify --type sbom` on an image index: the SBOMs are on its platform images, so each is checked.

A release attaches an SPDX SBOM to each platform manifest, not to the index a tag names (what a
user has). Given an index, verify checks the SBOM attestations of every platform image it lists and
says which it checked: verified only when each platform image has a valid one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.oci import mediatype
from pipeline.oci.manifest import Index, parse
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.signing.verify import Policy
from pipeline.stages import attest

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig


@dataclass
class PlatformAttestations:
    """The attestations of one type on each platform image of an index."""

    index: attest.AttestationResult  # what is attached to the index itself
    platforms: list[tuple[str, attest.AttestationResult]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.platforms) and all(result.verified for _, result in self.platforms)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.index.to_dict(),
            "verified": self.verified,
            "platforms": [{"platform": name, **result.to_dict()} for name, result in self.platforms],
        }

    def explain(self) -> str:
        where = f"{self.index.image}@{self.index.digest}"
        checked = ", ".join(name for name, _ in self.platforms)
        lines = [
            f"{where} is an image index: its {self.index.predicate_type} attestations are on its "
            f"{len(self.platforms)} platform images, each checked ({checked}):"
        ]
        for name, result in self.platforms:
            state = f"valid (referrer {result.chosen.source})" if result.chosen else "NO valid attestation"
            lines.append(f"- {name} {result.digest}: {state}")
            lines += ["  " + line for line in result.explain().splitlines()]
        return "\n".join(lines)

    def describe(self) -> str:
        text = [self.explain()]
        for name, result in self.platforms:
            if result.predicate is not None:
                body = json.dumps(result.predicate, indent=2, sort_keys=True)
                text.append(
                    f"verified {result.predicate_type} of {name} ({result.digest}); its predicate:\n{body}"
                )
        return "\n".join(text)


def of_index(
    found: attest.AttestationResult,
    image: Reference,
    *,
    client: Client,
    policy: Policy,
    configs: Sequence[ClientTrustConfig],
) -> PlatformAttestations | None:
    """The attestations of ``found``'s type on each platform image, when ``found`` is about an index
    (None when it is about an image manifest)."""
    data, desc = client.get_manifest(image.with_digest(found.digest))
    if desc.media_type not in mediatype.INDEX_TYPES:
        return None
    index = parse(data, desc.media_type)
    if not isinstance(index, Index):
        return None
    result = PlatformAttestations(found)
    for child in index.manifests:
        if child.media_type not in mediatype.MANIFEST_TYPES or child.platform is None:
            continue  # a nested index, or an artifact (no platform): no image to have an SBOM
        if child.platform.os == "unknown":
            continue  # an attestation manifest (BuildKit's unknown/unknown), not an image
        outcomes = attest.find(client, image, child.digest, found.predicate_type, policy, configs)
        child_result = attest.AttestationResult(found.image, child.digest, found.predicate_type, outcomes)
        result.platforms.append((str(child.platform), child_result))
    return result
