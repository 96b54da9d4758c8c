"""The test-result predicate, and what "up to date" demands of the registry's evidence."""

from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.evidence.testresult import names_release, predicate, release_descriptor, result_of
from pipeline.policy import tagplan
from pipeline.release.state import VariantState
from pipeline.signing.trust import SignedUnder

CONFIG = [{"name": "smoke-image", "uri": "r.test/nginx@sha256:" + "b" * 64}]
DIGEST = "sha256:" + "c" * 64


def test_the_predicate_says_which_tests_passed_and_failed() -> None:
    body = predicate([("smoke/answers", True), ("conformance/run", False)], CONFIG, url="https://ci/run/1")
    assert body == {
        "result": "FAILED",
        "configuration": CONFIG,
        "passedTests": ["smoke/answers"],
        "failedTests": ["conformance/run"],
        "url": "https://ci/run/1",
    }
    assert result_of(body) == "FAILED"
    passed = predicate([("smoke/answers", True)], CONFIG)
    assert passed["result"] == "PASSED" and "url" not in passed and result_of(passed) == "PASSED"
    assert result_of({"result": "GREAT"}) is None


@pytest.mark.parametrize(
    ("results", "configuration", "reason"),
    [
        ([], CONFIG, "at least one test"),
        ([("a", True)], [], "must name what was run"),
        ([("a", True), ("a", False)], CONFIG, "unique"),
        ([(" ", True)], CONFIG, "not empty"),
    ],
)
def test_a_predicate_that_would_say_nothing_is_refused(
    results: list[tuple[str, bool]], configuration: list[dict[str, str]], reason: str
) -> None:
    with pytest.raises(UsageError, match=reason):
        predicate(results, configuration)


def _state(tested: str | None, version: str = "1.2.2") -> VariantState:
    plan = tagplan.plan_variant(version, "executor", "r.test")
    # every rolling tag holds a higher version: none would move (an older patch release)
    rolling: dict[str, tuple[str | None, str | None]] = {
        tag: ("sha256:" + "d" * 64, "9.9.9") for tag in plan.rolling_tags
    }
    return VariantState(plan, DIGEST, rolling, signed=SignedUnder(None), tested=tested)


def test_a_signed_digest_is_up_to_date_only_with_a_passing_test_result() -> None:
    assert _state("PASSED").complete
    assert not _state(None).complete  # killed after signing, or attested by nobody we trust
    assert not _state("FAILED").complete
    assert not _state("WARNED").complete
    assert _state(None).to_dict()["tested"] is None


def test_a_signed_and_tested_digest_with_an_attestation_missing_is_not_up_to_date() -> None:
    state = _state("PASSED")
    state.missing = ["SBOM on sha256:" + "e" * 64 + " (linux/amd64)"]  # a run killed during attest
    assert not state.complete and not state.attested
    assert state.to_dict()["attestations_missing"] == state.missing


def test_a_test_result_counts_only_for_the_release_it_names() -> None:
    release = release_descriptor("1.2.3", "v1.2.3", "a" * 40)
    body = predicate([("smoke/answers", True)], [*CONFIG, release], url="urn:uuid:x")
    assert names_release(body, "1.2.3", "v1.2.3", "a" * 40)
    assert not names_release(body, "1.2.2", "v1.2.2", "a" * 40)  # another version
    assert not names_release(body, "1.2.3", "v1.2.3", "b" * 40)  # the tag moved to another commit
    assert not names_release(predicate([("smoke/answers", True)], CONFIG), "1.2.3", "v1.2.3", "a" * 40)
