"""What the registry holds for each variant: version tag, rolling tags, a valid signature or not, and
the latest valid test result. Complete ("up to date") needs all of it: a digest that is signed but
whose tests failed, or were never attested (a run killed after signing), is tested again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.evidence import testresult
from pipeline.policy import tagplan
from pipeline.release import attestations as evidence
from pipeline.release.signer import Signing, signed_by

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.registry.client import Client


@dataclass
class VariantState:
    """One variant in the registry: its version tag's digest, and each rolling tag's holder."""

    plan: tagplan.TagPlan
    digest: str | None  # what the version tag names now (None: not there)
    rolling: dict[str, tuple[str | None, str | None]]  # tag -> (digest, version it holds)
    signed: str | None = None  # trust config that verified the digest (None: no valid signature)
    tested: str | None = None  # the latest valid test result's result (PASSED, FAILED...), or None

    @property
    def decision(self) -> tagplan.RollingDecision:
        return tagplan.decide_rolling(self.plan, {tag: held[1] for tag, held in self.rolling.items()})

    @property
    def rolling_done(self) -> bool:
        return self.digest is not None and all(
            self.rolling[tag][0] == self.digest for tag in self.decision.move
        )

    @property
    def complete(self) -> bool:
        return (
            self.digest is not None
            and self.signed is not None
            and self.tested == testresult.PASSED
            and self.rolling_done
        )

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
            "tested": self.tested,
        }


def inspect_registry(
    client: Client,
    plans: Mapping[str, tagplan.TagPlan],
    signing: Signing | None,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> dict[str, VariantState]:
    """What each variant's tags name now, and whether the version's image is validly signed."""
    from pipeline.registry.reference import Reference
    from pipeline.stages import publish

    states: dict[str, VariantState] = {}
    for variant, plan in plans.items():
        repo = Reference.parse(plan.repository)
        found = client.head_manifest(repo.with_tag(plan.version_tags[0]))
        digest = found.digest if found is not None else None
        rolling: dict[str, tuple[str | None, str | None]] = {}
        for tag in plan.rolling_tags:
            held = client.head_manifest(repo.with_tag(tag))
            version = publish.held_version(client, repo.with_tag(tag)) if held is not None else None
            rolling[tag] = (held.digest if held is not None else None, version)
        state = VariantState(plan, digest, rolling)
        if digest is not None and signing is not None and configs:
            state.signed = signed_by(client, plan.repository, digest, signing, configs)
            if state.signed is not None:
                state.tested = evidence.latest_result(client, plan.repository, digest, signing, configs)
        states[variant] = state
    return states
