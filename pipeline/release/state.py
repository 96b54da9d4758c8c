"""What the registry holds for each variant, and what it proves: the version tag's digest (bound to
this release, :mod:`pipeline.release.binding`), each rolling tag's holder (a version counts only when
the release's identity signed it), a valid signature, the provenance on the index, an SBOM on each
platform image, and the latest valid test result for this version. Complete ("up to date") needs all of
it: anything missing (a run killed between sign and attest, a FAILED or missing test result) is made
again by the next run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.evidence import testresult
from pipeline.policy import tagplan
from pipeline.release import attestations
from pipeline.release.binding import SignatureChecks, Subject, check_version_tag, rolling_holds
from pipeline.signing.trust import SignedUnder


@dataclass
class VariantState:
    """One variant in the registry: its version tag's digest, each rolling tag's holder, its proof."""

    plan: tagplan.TagPlan
    digest: str | None  # what the version tag names now (None: not there)
    rolling: dict[str, tuple[str | None, str | None]]  # tag -> (digest, version it holds)
    signed: SignedUnder | None = None  # the trust config that verified the digest (None: no valid signature)
    tested: str | None = None  # the latest valid test result for this version (PASSED, FAILED...), or None
    missing: list[str] = field(default_factory=list)  # attestations not (validly) attached

    @property
    def decision(self) -> tagplan.RollingDecision:
        return tagplan.decide_rolling(self.plan, {tag: held[1] for tag, held in self.rolling.items()})

    @property
    def rolling_done(self) -> bool:
        return self.digest is not None and all(
            self.rolling[tag][0] == self.digest for tag in self.decision.move
        )

    @property
    def attested(self) -> bool:
        """Signed, with a valid provenance on the index and an SBOM on each platform image."""
        return self.digest is not None and self.signed is not None and not self.missing

    @property
    def complete(self) -> bool:
        return self.attested and self.tested == testresult.PASSED and self.rolling_done

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "repository": self.plan.repository,
            "version_tags": {tag: self.digest for tag in self.plan.version_tags},
            "rolling": {
                tag: {
                    "digest": digest,
                    "version": version,
                    "action": (
                        f"keep (holds {decision.keep[tag]})"
                        if tag in decision.keep
                        else ("in place" if digest is not None and digest == self.digest else "move")
                    ),
                }
                for tag, (digest, version) in self.rolling.items()
            },
            "signed": self.signed is not None,
            "attestations_missing": list(self.missing),
            "tested": self.tested,
        }


def inspect_registry(
    checks: SignatureChecks, plans: Mapping[str, tagplan.TagPlan], subject: Subject
) -> dict[str, VariantState]:
    """What each variant's tags name now, each checked against this release (raises VerifyError for a
    tag that names what it must not), and what the registry proves about the version's image."""
    from pipeline.registry.reference import Reference

    states: dict[str, VariantState] = {}
    for variant, plan in plans.items():
        repo = Reference.parse(plan.repository)
        found = checks.client.head_manifest(repo.with_tag(plan.version_tags[0]))
        digest = found.digest if found is not None else None
        if digest is not None:
            check_version_tag(checks.client, plan, digest, subject)
        state = VariantState(plan, digest, rolling_holds(checks, plan, digest))
        if digest is not None and checks.usable:
            state.signed = checks.signed(plan.repository, digest)
        if digest is not None and state.signed is not None:
            state.missing = attestations.missing_build_evidence(checks, plan, variant, digest, subject)
            state.tested = attestations.latest_result(checks, plan.repository, digest, subject)
        states[variant] = state
    return states
