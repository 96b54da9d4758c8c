"""Each decision bound to its subject: a tag counts only for what its image proves it is.

A signature binds a digest, never a tag, and anyone with push access can point a tag at any digest.
So, before the release believes a tag:

- a **version tag** (``vX.Y.Z``, ``vX.Y.Z-debug``, ...) must name an index whose
  ``org.opencontainers.image.version`` and ``.revision`` annotations are this release's version and
  commit, and whose verified provenance (when there is one) names this tag, commit and variant;
- a **rolling tag** (``latest``, ``vX``, ...) holds the version its index's annotation says only when
  that digest is validly signed by the release's identity.

Anything else raises :class:`~pipeline.errors.VerifyError` naming the tag and what it holds: never
"up to date", never a silent keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import VerifyError
from pipeline.policy import tagplan
from pipeline.registry.reference import Reference
from pipeline.release.signer import signed_by

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.evidence.provenance import Parameters
    from pipeline.registry.client import Client
    from pipeline.signing.trust import SignedUnder, Trust
    from pipeline.signing.verify import Policy

REVISION_ANNOTATION = "org.opencontainers.image.revision"


@dataclass(frozen=True)
class Subject:
    """What the release resolved: the fork's tag, the commit it names and the version."""

    version: str
    tag: str
    commit: str


@dataclass
class SignatureChecks:
    """The release's :class:`~pipeline.signing.trust.Trust` with a registry client, and the signature
    checks made so far (one per digest)."""

    client: Client
    trust: Trust
    _signed: dict[str, SignedUnder | None] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.trust.usable

    @property
    def policy(self) -> Policy:
        return self.trust.policy

    @property
    def loaded(self) -> list[ClientTrustConfig]:
        return self.trust.loaded

    def signed(self, repository: str, digest: str) -> SignedUnder | None:
        """The trust config under which ``repository@digest`` is signed by the identity, or None."""
        if not self.usable:
            return None
        key = f"{repository}@{digest}"
        if key not in self._signed:
            self._signed[key] = signed_by(self.client, repository, digest, self.trust)
        return self._signed[key]


def annotations_of(client: Client, ref: Reference) -> dict[str, str]:
    """The annotations of the manifest or index ``ref`` names (empty when it has none)."""
    data, _ = client.get_manifest(ref)
    try:
        doc = json.loads(data)
    except ValueError:
        return {}
    found = doc.get("annotations") if isinstance(doc, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items()}


def _holds(found: dict[str, str]) -> str:
    version = found.get(tagplan.VERSION_ANNOTATION) or "no version"
    commit = found.get(REVISION_ANNOTATION)
    return f"version {version}" + (f" (commit {commit[:12]})" if commit else "")


def check_version_tag(client: Client, plan: tagplan.TagPlan, digest: str, subject: Subject) -> None:
    """Raise unless the index the version tag names says it is this version, of this commit."""
    repo = Reference.parse(plan.repository)
    found = annotations_of(client, repo.with_digest(digest))
    version, commit = found.get(tagplan.VERSION_ANNOTATION), found.get(REVISION_ANNOTATION)
    if version == subject.version and commit in (None, subject.commit):
        return
    raise VerifyError(
        f"{plan.repository}:{plan.version_tags[0]} holds {digest}, an image of {_holds(found)}, not "
        f"{subject.version} (commit {subject.commit[:12]}): the tag does not name this release",
        hint="someone pointed the version tag at another image; point it back (or delete it) and run "
        "the release again, which rebuilds and checks the version's image",
    )


def check_provenance(plan: tagplan.TagPlan, variant: str, params: Parameters, subject: Subject) -> None:
    """Raise unless a verified provenance names this tag, commit and variant."""
    if (params.tag, params.commit, params.variant) == (subject.tag, subject.commit, variant):
        return
    raise VerifyError(
        f"{plan.repository}:{plan.version_tags[0]}'s verified provenance is of {params.variant} "
        f"{params.tag} (commit {params.commit[:12]}), not {variant} {subject.tag} "
        f"(commit {subject.commit[:12]}): the tag does not name this release",
        hint="someone pointed the version tag at another image; point it back (or delete it) and run "
        "the release again",
    )


def rolling_holds(
    checks: SignatureChecks, plan: tagplan.TagPlan, own: str | None
) -> dict[str, tuple[str | None, str | None]]:
    """Each rolling tag's digest and the version it holds (tag -> (digest, version)). A tag on
    ``own`` (this version's digest) holds this version; any other digest must be validly signed by
    the release's identity, or this raises, naming the tag and what it holds."""
    repo = Reference.parse(plan.repository)
    out: dict[str, tuple[str | None, str | None]] = {}
    for tag in plan.rolling_tags:
        held = checks.client.head_manifest(repo.with_tag(tag))
        if held is None:
            out[tag] = (None, None)
            continue
        if held.digest == own:
            out[tag] = (held.digest, plan.version)
            continue
        found = annotations_of(checks.client, repo.with_digest(held.digest))
        if checks.signed(plan.repository, held.digest) is None:
            who = checks.policy.identity
            raise VerifyError(
                f"{plan.repository}:{tag} holds {held.digest} ({_holds(found)}), which has no valid "
                f"signature from {who}: the release will not keep or move a tag it cannot vouch for",
                hint=f"point {tag} back at an image this release signed (or delete the tag), then run "
                "the release again",
            )
        out[tag] = (held.digest, found.get(tagplan.VERSION_ANNOTATION))
    return out
