"""Regressions gate, differences inform: the previous release's verified results against this run's, the
signed test result's passed/failed/warned lists, the report's columns and groups, and what is kept
between runs (memo.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.evidence.testresult import predicate
from pipeline.release import attestations
from pipeline.stages.conformance import conformance_report, memo, regressions
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import CaseResult, ConformanceResult
from pipeline.stages.conformance.snapshot import PathEntry, Snapshot

PREVIOUS = {
    "result": "PASSED",
    "passedTests": ["conformance/executor/fork-copy", "conformance/executor/fork-env", "smoke/http"],
    "failedTests": [],
    "warnedTests": ["conformance/executor/fork-never"],
}


def _result() -> ConformanceResult:
    return ConformanceResult(
        executor="r/kaniko-executor@sha256:" + "b" * 64,
        reference="buildah",
        cases=[
            CaseResult("scratch-copy", "executor", "passed", outcome="matched"),
            CaseResult(
                "fork-copy",
                "executor",
                "failed",
                gating=False,
                suite="fork",
                outcome="differs",
                reason="1 difference(s) against buildah",
                differences=("/a.txt: mode kaniko=0600 buildah=0644",),
            ),
            CaseResult("fork-env", "executor", "passed", gating=False, suite="fork", outcome="matched"),
            CaseResult(
                "fork-never",
                "executor",
                "failed",
                gating=False,
                suite="fork",
                outcome="differs",
                differences=("/b.txt: mode kaniko=0600 buildah=0644", "/c: uid kaniko=0 buildah=1000"),
            ),
            CaseResult(
                "fork-new",
                "executor",
                "failed",
                gating=False,
                suite="fork",
                outcome="kaniko-failed",
                reason="kaniko failed (exit status 1)",
            ),
            CaseResult(
                "fork-far",
                "executor",
                "skipped",
                gating=False,
                suite="fork",
                reason="its base alpine:3 has no offline stand-in (only scratch, busybox)",
            ),
        ],
    )


def test_a_case_that_passed_with_the_previous_release_and_fails_now_gates() -> None:
    previous = regressions.from_predicate("r/kaniko-executor@sha256:" + "a" * 64, "v1.2.2", PREVIOUS)
    assert previous.passed == {"conformance/executor/fork-copy", "conformance/executor/fork-env"}
    result = _result()
    assert result.ok  # before the comparison, only the repository suite gates
    regressions.apply(result, previous)
    by_name = {case.name: case for case in result.cases}
    assert by_name["fork-copy"].regression and by_name["fork-copy"].gating
    assert by_name["fork-copy"].reason.startswith(
        "regression: it passed with v1.2.2 (r/kaniko-executor@sha256:"
    )
    assert by_name["fork-never"].previous == "not passed" and not by_name["fork-never"].gating
    assert by_name["fork-new"].previous == "" and not by_name["fork-new"].gating  # never passed: reported
    assert by_name["fork-env"].previous == "passed" and not by_name["fork-env"].regression
    assert not result.ok and [c.name for c in result.failed()] == ["fork-copy"]
    assert result.to_dict()["regressions"] == ["conformance/executor/fork-copy"]
    assert "1 regression(s) against the previous release" in result.summary()


def test_no_previous_release_leaves_the_gate_as_it_was() -> None:
    result = regressions.apply(_result(), None)
    assert result.ok and not any(case.regression or case.previous for case in result.cases)


def test_the_previous_release_is_the_newest_exact_version_below_this_one() -> None:
    tags = ["latest", "v1", "v1.2", "v1.2.1", "v1.2.2", "v1.2.3", "v1.3.0", "v1.2.3-rc.1"]
    assert regressions.previous_tag(tags, "v1.2.3") == "v1.2.2"
    assert regressions.previous_tag(tags, "v1.2.1") is None
    assert regressions.previous_tag(["v1.2.3"], "not-a-version") is None


def test_the_signed_test_result_names_every_case_and_warns_of_reported_ones() -> None:
    result = regressions.apply(
        _result(), regressions.from_predicate("x@sha256:" + "a" * 64, "v1.2.2", PREVIOUS)
    )
    results = attestations.conformance_results(result)
    warned = attestations.conformance_warned(result)
    assert results == [
        ("conformance/executor/scratch-copy", True),
        ("conformance/executor/fork-copy", False),  # the regression gates: a failed test
        ("conformance/executor/fork-env", True),
    ]
    assert warned == ["conformance/executor/fork-never", "conformance/executor/fork-new"]
    body = predicate(results, [{"name": "executor", "uri": "x"}], warned=warned)
    assert body["result"] == "FAILED" and body["warnedTests"] == warned
    # what the next release reads back from it
    again = regressions.from_predicate("x@sha256:" + "c" * 64, "v1.2.3", body)
    assert (
        "conformance/executor/fork-new" in again.not_passed
        and "conformance/executor/fork-env" in again.passed
    )


def test_the_report_counts_each_suite_groups_skips_and_unclassified_differences() -> None:
    result = _result()
    result.cases.append(
        CaseResult(
            "fork-other",
            "executor",
            "failed",
            gating=False,
            suite="fork",
            outcome="differs",
            reason="kaniko said \x1b[31mERRO\x1b[0m",
            differences=("/z/y: mode kaniko=0600 buildah=0644",),
        )
    )
    suites = {item["suite"]: item for item in conformance_report.suites(result)}
    fork = suites["fork"]
    assert fork["cases"] == 6 and fork["run"] == 5
    assert fork["outcomes"] == {"differs": 3, "kaniko-failed": 1, "matched": 1}
    assert fork["skipped"] == {"its base has no offline stand-in": 1}
    groups = conformance_report.unclassified(result)
    assert list(groups)[0] == "mode kaniko=0600 buildah=0644"
    assert groups["mode kaniko=0600 buildah=0644"] == ["fork-copy", "fork-never", "fork-other"]
    text = conformance_report.markdown(result)
    assert "\x1b" not in text and "| fork-copy | executor | differs | not known | built it |" in text
    assert "| chown-copy-parent-owner |" in text and "moby/buildkit#640" in text


def test_a_case_key_follows_its_content_and_bases(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "Dockerfile").write_text("FROM scratch\nCOPY a /\n")
    (tmp_path / "c" / "a").write_text("a\n")
    case = Case("c", tmp_path / "c")
    first = memo.case_key(case, {"library/busybox": "sha256:1"})
    assert memo.case_key(case, {"library/busybox": "sha256:2"}) != first
    os.chmod(tmp_path / "c" / "a", 0o600)
    assert memo.case_key(case, {"library/busybox": "sha256:1"}) != first
    assert memo.case_key(Case("c", tmp_path / "c", build_args={"A": "1"}), {}) != memo.case_key(case, {})


def test_kept_images_and_results_come_back_as_they_were(tmp_path: Path) -> None:
    kept = memo.Memo(tmp_path, buildah_version="buildah version 1.28.2")
    image = Snapshot({"/a": PathEntry("file", 0o644, 0, 0, 2, "ab")}, {"User": "1000"}, "sha256:c")
    kept.keep_reference("k", image)
    assert kept.reference("k") == image
    assert memo.Memo(tmp_path, buildah_version="buildah version 1.39.0").reference("k") is None
    kept.keep_reference("bad", "buildah could not build the case")
    assert kept.reference("bad") == "buildah could not build the case"
    case = CaseResult("c", "executor", "failed", differences=("d",), outcome="differs", suite="fork")
    kept.keep_result("sha256:e1", "executor", "k", case)
    assert kept.result("sha256:e1", "executor", "k") == case
    assert kept.result("sha256:e2", "executor", "k") is None  # another executor: built again
    damaged = next(tmp_path.glob("result/*/*.json"))
    damaged.write_text("{not json")
    assert kept.result("sha256:e1", "executor", "k") is None
    assert json.loads(json.dumps(case.to_dict()))["outcome"] == "differs"


def test_a_result_is_kept_unless_a_timeout_or_podman_made_it() -> None:
    from pipeline.stages.conformance.runner import _repeatable

    def failed(reason: str) -> CaseResult:
        return CaseResult("c", "executor", "failed", reason=reason)

    assert _repeatable(failed("buildah could not build the case (exit status 125):\nError: COPY --parents"))
    assert _repeatable(failed("kaniko failed (exit status 1)\nkaniko's last lines:"))
    assert not _repeatable(failed("kaniko failed (exit status 125)\nkaniko's last lines:"))
    assert not _repeatable(failed("kaniko failed (exit status 124)\nkaniko did not finish within 600 s"))
    assert not _repeatable(
        failed(
            "buildah could not build the case (exit status 124):\nbuildah bud c did not finish within 600 s"
        )
    )
    assert not _repeatable(
        CaseResult("c", "executor", "skipped", reason="its base x has no offline stand-in")
    )
