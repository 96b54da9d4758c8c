"""The conformance suite in shards (pipeline/stages/conformance/shards.py): how a plan splits into K/N
parts, and what the release that joins the shard jobs' results refuses, each with its reason.

The plan is the repository's own suite plus three fork Dockerfiles (executor only, as the fork's suite
is). The shard results stand in for shard jobs: the whole run is tests/integration/test_release_graph.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.stages.conformance import cases
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import CaseResult, ConformanceResult
from pipeline.stages.conformance.shards import ReleaseUnderTest, Shard, ShardResult, expected, join

DIGEST = "sha256:" + "1" * 64
RELEASE = ReleaseUnderTest(
    "1.2.3",
    "v1.2.3",
    "a" * 40,
    {v: f"127.0.0.1:5000/kaniko-{v}@{DIGEST}" for v in ("executor", "debug", "slim", "warmer")},
)


def _plan() -> list[Case]:
    fork = [
        Case(f"Dockerfile_test_{n}", Path("/fork"), suite="fork", variants=("executor",), gating=False)
        for n in ("add", "copy", "volume")
    ]
    return [*cases.load(None), *fork]


def _ran(shard: Shard, plan: list[Case], *, fail: str = "") -> ShardResult:
    """What a shard job's run of ``shard`` writes: a result per pair it runs (``fail``: that case fails)."""
    names = {case.name: case.suite for case in plan}
    results = [
        CaseResult(
            name,
            variant,
            "failed" if name == fail else "passed",
            1.0,
            suite=names.get(name, "variant-proofs"),
        )
        for name, variant in expected(plan, list(RELEASE.executors), shard)
    ]
    result = ConformanceResult(RELEASE.executors["executor"], "buildah", results, matrix={}, seconds=10.0)
    return ShardResult(shard, RELEASE.version, RELEASE.tag, RELEASE.commit, dict(RELEASE.executors), result)


def _files(tmp_path: Path, results: list[ShardResult]) -> list[tuple[Path, ShardResult]]:
    out = []
    for result in results:
        path = tmp_path / f"shard-{result.shard.part}.json"
        result.write(path)
        out.append((path, ShardResult.read(path)))  # through the file, as the release job reads it
    return out


def test_the_parts_take_every_case_once_and_the_first_part_proves_the_variants() -> None:
    plan = _plan()
    whole = expected(plan, list(RELEASE.executors), Shard(1, 1))
    for parts in (1, 2, 3, 4, len(plan) + 2):  # more parts than cases: some parts are empty
        split = [expected(plan, list(RELEASE.executors), Shard(k, parts)) for k in range(1, parts + 1)]
        flat = [pair for part in split for pair in part]
        assert sorted(flat) == sorted(whole)
        proofs = {("gitlab-script", "debug"), ("warm-cache", "warmer"), ("credential-helpers", "executor")}
        assert proofs <= set(split[0]) and not any(proofs & set(part) for part in split[1:])
    # a case runs with every variant in the one part that has it (the capability matrix is learnt there)
    two = [expected(plan, list(RELEASE.executors), Shard(k, 2)) for k in (1, 2)]
    for name, variants in (
        ("run-forms", {"executor", "slim", "debug"}),
        ("Dockerfile_test_copy", {"executor"}),
    ):
        found = [{v for case, v in part if case == name} for part in two]
        assert sorted(found, key=len) == [set(), variants]
    # the slow fork cases spread over the parts: consecutive cases go to different parts
    fork_parts = [k for k in (1, 2) for name, _ in two[k - 1] if name.startswith("Dockerfile_test_")]
    assert sorted(set(fork_parts)) == [1, 2]


def test_the_joined_result_is_in_one_machine_order_and_a_failure_in_any_shard_fails_it(
    tmp_path: Path,
) -> None:
    plan = _plan()
    shards = [_ran(Shard(k, 3), plan, fail="run-forms") for k in (3, 1, 2)]  # in one part's results
    joined = join(_files(tmp_path, shards), plan, RELEASE)
    whole = expected(plan, list(RELEASE.executors), Shard(1, 1))
    assert [(case.name, case.variant) for case in joined.cases] == whole
    assert not joined.ok and {c.name for c in joined.failed()} == {"run-forms"}
    assert joined.seconds == 30.0 and joined.executor == RELEASE.executors["executor"]
    passing = join(_files(tmp_path / "ok", [_ran(Shard(k, 3), plan) for k in (1, 2, 3)]), plan, RELEASE)
    assert passing.ok


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("missing", "no result for shard(s) 2/3: the release cannot say the whole suite passed"),
        ("twice", "shard 1/3 is in both"),
        ("other-split", "is shard 1/2 and"),
        (
            "other-commit",
            "tested v1.2.3 (1.2.3 at bbbbbbbbbbbb), but this release is v1.2.3 (1.2.3 at aaaaaaaaaaaa)",
        ),
        (
            "other-digest",
            f"tested executor 127.0.0.1:5000/kaniko-executor@sha256:{'2' * 64}, but this release publishes 127.0.0.1:5000/kaniko-executor@{DIGEST}",
        ),
        ("dropped-case", "(shard 2/3) lacks 1 case(s) of this release's plan (first: "),
        ("added-case", "(shard 3/3) holds cases not in its part: 1 case(s)"),
        ("other-bases", "compared with buildah on real bases"),
    ],
)
def test_a_join_refuses_what_does_not_make_the_whole_suite_of_this_release(
    tmp_path: Path, change: str, reason: str
) -> None:
    plan = _plan()
    shards = {k: _ran(Shard(k, 3), plan) for k in (1, 2, 3)}
    if change == "missing":
        del shards[2]
    elif change == "twice":
        shards[2] = dataclasses.replace(shards[1])
    elif change == "other-split":
        shards[3] = _ran(Shard(1, 2), plan)
    elif change == "other-commit":
        shards[2] = dataclasses.replace(shards[2], commit="b" * 40)
    elif change == "other-digest":
        executors = {**shards[2].executors, "executor": f"127.0.0.1:5000/kaniko-executor@sha256:{'2' * 64}"}
        shards[2] = dataclasses.replace(shards[2], executors=executors)
    elif change == "dropped-case":  # e.g. a failing case left out of a result
        shards[2].result.cases.pop(0)
    elif change == "added-case":
        shards[3].result.cases.append(shards[1].result.cases[0])
    elif change == "other-bases":
        shards[3].result.bases = "real bases from https://registry-1.docker.io through a pull-through cache"
    with pytest.raises(UsageError) as refused:
        join(_files(tmp_path, list(shards.values())), plan, RELEASE)
    assert reason in refused.value.message


def test_a_shard_name_and_a_result_file_are_checked(tmp_path: Path) -> None:
    assert str(Shard.parse(" 2/4 ")) == "2/4"
    for bad in ("0/4", "5/4", "2", "a/b", "2/4/1", ""):
        with pytest.raises(UsageError) as refused:
            Shard.parse(bad)
        assert "is not a part of the suite" in refused.value.message and "K/N" in (refused.value.hint or "")
    other = tmp_path / "record.json"
    other.write_text(json.dumps({"kind": "kaniko-pipeline platform images", "format": 1}))
    with pytest.raises(UsageError, match="is not a conformance shard's result"):
        ShardResult.read(other)
    damaged = tmp_path / "damaged.json"
    data = _ran(Shard(1, 1), _plan()).to_dict()
    del data["result"]["cases"]
    damaged.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="is damaged"):
        ShardResult.read(damaged)
    with pytest.raises(UsageError, match="cannot be read"):
        ShardResult.read(tmp_path / "none.json")
