"""Regressions gate, differences inform: each case compared with the previous released executor.

The previous release is the newest exact version tag of the executor repository below the version
being released; what its cases did is read from that digest's latest *verified* test result (signed by
the release's identity), whose ``passedTests`` and ``failedTests``/``warnedTests`` name each case as
``conformance/<variant>/<case>``. A case that passed then and now fails or differs is a regression: it
gates, whatever suite it comes from. A case that never passed is reported, not gating. The repository
suite gates as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pipeline.stages.conformance.result import ConformanceResult

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.progress import Progress
    from pipeline.registry.client import Client
    from pipeline.signing.verify import Policy


@dataclass(frozen=True)
class Baseline:
    """The previous released executor and what its verified test result says of each case."""

    executor: str  # REPOSITORY@DIGEST
    tag: str
    passed: frozenset[str]
    not_passed: frozenset[str]

    def status(self, test_name: str) -> str:
        if test_name in self.passed:
            return "passed"
        return "not passed" if test_name in self.not_passed else ""

    def to_dict(self) -> dict[str, Any]:
        return {"executor": self.executor, "tag": self.tag, "passed": len(self.passed)}


def from_predicate(executor: str, tag: str, body: Mapping[str, Any]) -> Baseline:
    def names(key: str) -> frozenset[str]:
        value = body.get(key) or []
        return frozenset(str(v) for v in value if isinstance(v, str) and v.startswith("conformance/"))

    return Baseline(executor, tag, names("passedTests"), names("failedTests") | names("warnedTests"))


def previous_tag(tags: Sequence[str], version: str) -> str | None:
    """The newest exact release tag older than ``version`` (rolling tags such as v1 or latest are not)."""
    from pipeline.policy import versions

    current = versions.parse_tag(version)
    if current is None:
        return None
    older = [
        release
        for release in versions.releases(tags)
        if release.version < current and release.tag.count(".") == 2
    ]
    return older[0].tag if older else None


def baseline(
    client: Client,
    repository: str,
    version: str,
    policy: Policy,
    configs: Sequence[ClientTrustConfig],
) -> Baseline | None:
    """The previous release of ``repository`` and its verified test result, or None (a first release,
    or one that has no verified test result)."""
    from pipeline.evidence.testresult import TEST_RESULT
    from pipeline.registry.reference import Reference
    from pipeline.stages import attest

    ref = Reference.parse(repository)
    tag = previous_tag(client.list_tags(ref), version)
    if tag is None:
        return None
    found = client.head_manifest(Reference.parse(f"{repository}:{tag}"))
    if found is None:
        return None
    outcome = attest.latest(attest.find(client, ref, found.digest, TEST_RESULT, policy, configs))
    body = (outcome.statement or {}).get("predicate") if outcome is not None else None
    if not isinstance(body, dict):
        return None
    return from_predicate(f"{repository}@{found.digest}", tag, body)


def apply(result: ConformanceResult, previous: Baseline | None) -> ConformanceResult:
    """Each case marked with what it did before; a regression gates (in place, and returned)."""
    if previous is None:
        return result
    result.baseline = previous.to_dict()
    marked = []
    for case in result.cases:
        before = previous.status(case.test_name)
        regressed = before == "passed" and case.status == "failed"
        if regressed:
            case = replace(
                case,
                gating=True,
                regression=True,
                reason=f"regression: it passed with {previous.tag} ({previous.executor})\n{case.reason}",
            )
        marked.append(replace(case, previous=before))
    result.cases = marked
    return result


def lookup(
    client: Client,
    repository: str,
    version: str,
    policy: Policy,
    configs: Sequence[ClientTrustConfig],
    progress: Progress,
) -> Baseline | None:
    """:func:`baseline`, saying what it found; a registry that cannot answer means no baseline (with a
    warning), never a failed release."""
    from pipeline.errors import PipelineError

    try:
        found = baseline(client, repository, version, policy, configs)
    except PipelineError as exc:
        progress.warn(f"conformance: no previous release to compare with ({exc.message})")
        return None
    if found is None:
        progress.info("conformance: no previous release with a verified test result; nothing to regress from")
    else:
        progress.info(f"conformance: regressions are measured against {found.tag} ({found.executor})")
    return found
