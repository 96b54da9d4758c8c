"""Issue 24: the release's CI graph, job by job, from the workflow files' own commands.

check -> platform (one job per platform: `invoke fork`, `invoke build --platforms P`, `invoke publish
--manifests-only --record FILE`) -> publish (`invoke release --publish-only --join FILE...`: each variant's
index, signed and attested) -> conformance (`invoke release --shard K/N --shard-result FILE`, one job per
shard) -> release (`invoke release --join-shard FILE...`). Each job runs in a process of its own, in a
directory of its own, with a pipeline cache of its own (only Go's content-addressed build cache and the
nginx base are the session's, which changes no output); artifacts are handed over as directories, the
check's answer as the variables the CIs give (tests/support/workflows.py says what else is stood in for).
The jobs alternate between GitHub's file and GitLab's, so both files' commands run; both files must give
the same graph. One Sigstore instance (local, configured as a real one: a trust config and an OIDC token
for the jobs that may sign) stands in for the public one.

The joined indexes must be byte for byte those of a one-machine build of the same platforms, and the
joined conformance result that of one machine running the whole suite on the same images. The fixture
fork's executor is the fake executor (tests/support/fakeexecutor.py), which fails the quick suite's cases:
so the release job ends at its gate, with a signed FAILED test result and the rolling tags where they
were, as a real failing shard would leave them; so does the one-machine release it is compared with (whose
report is checked here too: this is the suite's one-machine failing conformance stage; a gate that holds
rolling tags already there is test_release_regression.py's). The fixture fork's busybox has one platform, so these
builds leave debug out.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline import config, release
from pipeline.errors import UsageError
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.services.nginxbase import BaseImage
from tests.support import workflows
from tests.support.cli import run_invoke
from tests.support.releasefork import NEW, Fork, cli_env, release_options, tags_in

pytestmark = pytest.mark.slow

PLATFORMS = ("linux/amd64", "linux/arm64")
VARIANTS = ("executor", "slim", "warmer")
SHARDS = 2
# The workflows' own variables the test sets (both files declare them; the test checks that they do).
OVERRIDES = {"RELEASE_PLATFORMS": ",".join(PLATFORMS), "SHARDS": str(SHARDS), "RELEASE_CONFORMANCE": "quick"}


class Graph:
    """The jobs of one release, each in its own directory and cache under ``root``."""

    def __init__(self, fork: Fork, registry: LocalRegistry, root: Path, base: BaseImage, trust: Path) -> None:
        self.fork, self.registry, self.root, self.base, self.trust = fork, registry, root, base, trust
        self.answer: dict[str, str] = {}

    def env(self, where: Path) -> dict[str, str]:
        """A job's environment: a cache of its own, the test's registry and Sigstore, the check's answer."""
        cache = where / "cache"
        cache.mkdir(parents=True)
        (cache / "go-build").symlink_to(self.fork.shared / "go-build")
        (cache / "nginx-base").symlink_to(self.base.store)
        return {
            **cli_env(self.fork, self.registry, where / "home", cache, PLATFORMS),
            **OVERRIDES,
            **self.answer,
            "INVOKE_PIPELINE_VARIANTS": ",".join(VARIANTS),
            "INVOKE_PIPELINE_TRUST_CONFIG": str(self.trust),
            "CERTIFICATE_IDENTITY": localsigstore.LOCAL_IDENTITY,
            "CERTIFICATE_OIDC_ISSUER": localsigstore.LOCAL_ISSUER,
            "RELEASE_PREFIX": self.registry.host,
            "RELEASE_REF": "latest",
            "RELEASE_FORCE": "false",
            "CI_PROJECT_DIR": str(where),
            "GITHUB_OUTPUT": str(where / "github-output"),
        }

    def job(
        self,
        name: str,
        ci: str,
        label: str,
        inputs: tuple[Path, ...] = (),
        extra: dict[str, str] | None = None,
    ) -> tuple[Path, str, int]:
        """Run job ``name`` of ``ci``'s file in a new directory holding ``inputs`` (artifact directories);
        returns the directory, its output and exit status. A job that may sign gets an OIDC token."""
        where = self.root / f"{label}-{ci}"
        where.mkdir(parents=True)
        for artifact in inputs:
            shutil.copytree(artifact, where / artifact.name, dirs_exist_ok=True)
        env = {**self.env(where), **(extra or {})}
        if workflows.signs(name, ci):
            env["SIGSTORE_ID_TOKEN"] = localsigstore.mint_identity_token()
        scripts = workflows.github_scripts(name) if ci == "github" else workflows.gitlab_scripts(name)
        ran = workflows.run(scripts, env, where)
        return where, ran.stdout + ran.stderr, ran.returncode


def _json(args: list[str], env: dict[str, str]) -> dict[str, object]:
    ran = run_invoke([*args, "--json"], env=env, timeout=600)
    assert ran.returncode == 0, f"invoke {' '.join(args)}: {ran.stderr[-3000:]}"
    result: dict[str, object] = json.loads(ran.stdout)
    return result


def _named(tags: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The version and rolling tags (not the signatures' and attestations' sha256-... tags)."""
    return {
        repo: {t: d for t, d in found.items() if not t.startswith("sha256-")} for repo, found in tags.items()
    }


def _test_result(registry: LocalRegistry, digest: str, trust_config: Path) -> dict[str, Any]:
    """The predicate of the newest verified test result attached to the executor ``digest``."""
    from pipeline.evidence.testresult import TEST_RESULT
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.registry.reference import Reference
    from pipeline.signing import trust
    from pipeline.signing.verify import Policy
    from pipeline.stages import attest

    policy = Policy(localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER)
    with Client(credentials=Credentials.anonymous()) as client:
        ref = Reference.parse(f"{registry.host}/kaniko-executor")
        found = attest.latest(
            attest.find(client, ref, digest, TEST_RESULT, policy, [trust.load(trust_config)])
        )
    assert found is not None and found.statement is not None
    predicate: dict[str, Any] = found.statement["predicate"]
    return predicate


def _cases(report_dir: Path) -> list[tuple[str, str, str, str]]:
    """The conformance cases of the newest release report in ``report_dir``."""
    report = json.loads(sorted(report_dir.glob("release-v1.2.3-*.json"))[-1].read_text())
    return [(c["suite"], c["name"], c["variant"], c["status"]) for c in report["conformance"]["cases"]]


@pytest.mark.usefixtures("go_build_cache_arm64")  # the fork's shared Go cache, warm for arm64 too
def test_the_workflows_jobs_release_a_new_tag_and_join_to_the_one_machine_builds_digests(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    nginx_base: BaseImage,
    local_sigstore: localsigstore.LocalSigstore,
    tmp_path: Path,
) -> None:
    settings, nginx = env
    # both files: the same graph, and the variables the test sets
    assert workflows.needs("github") == workflows.needs("gitlab")
    assert workflows.order(workflows.needs("github")) == [
        "check",
        "platform",
        "publish",
        "conformance",
        "release",
    ]
    assert set(OVERRIDES) <= set(workflows.github_file()["env"]), "GitHub's workflow env"
    assert set(OVERRIDES) - {"SHARDS"} <= set(workflows.gitlab_file()["variables"]), "GitLab's variables"
    assert workflows.gitlab_job("conformance")["parallel"] == len(
        workflows.github_job("conformance")["strategy"]["matrix"]["shard"]
    )
    graph = Graph(fork, registry, tmp_path / "jobs", nginx_base, local_sigstore.trust_config)

    # check: a new tag, work to do
    where, out, status = graph.job("check", "github", "check")
    assert status == 0, out[-3000:]
    graph.answer = {
        k: v for k, v in workflows.answer(where / "github-output").items() if k.startswith("RELEASE_")
    }
    assert graph.answer["RELEASE_WORK"] == "true" and graph.answer["RELEASE_TAG"] == NEW, graph.answer

    # platform jobs, by digest only: no tag, no index yet
    records = []
    for platform, ci in zip(PLATFORMS, ("github", "gitlab"), strict=True):
        where, out, status = graph.job(
            "platform", ci, f"platform-{platform.replace('/', '-')}", extra={"PLATFORM": platform}
        )
        assert status == 0, f"{ci} platform job for {platform}: {out[-3000:]}"
        assert json.loads((where / "records" / f"{platform.replace('/', '-')}.json").read_text())[
            "platforms"
        ] == [platform]
        records.append(where / "records")
    assert tags_in(registry) == {"kaniko-executor": {}, "kaniko-warmer": {}}

    # the one-machine build of the same platforms (a process and a cache of its own)
    one = graph.env(tmp_path / "one-machine")
    _json(["fork", "--ref", NEW], one)
    built = _json(["build"], one)
    expected = {v: image["digest"] for v, image in built["images"].items()}  # type: ignore[attr-defined]

    # a join of a record of another commit, a platform missing or twice: refused before anything is pushed
    amd64, arm64 = (next(r.glob("*.json")) for r in records)
    other = tmp_path / "other-commit.json"
    other.write_text(json.dumps({**json.loads(arm64.read_text()), "commit": "0" * 40}))
    settings = dataclasses.replace(settings, platforms=PLATFORMS, variants=VARIANTS)
    for join, reason in (
        ((amd64, other), f"{other} is of 1.2.3 at 000000000000, but this release is 1.2.3 at"),
        ((amd64,), "the records do not hold the release's platforms; missing: linux/arm64"),
        ((amd64, amd64), f"linux/amd64 is in both {amd64} and {amd64}"),
    ):
        with pytest.raises(UsageError) as refused:
            release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, join=join))
        assert reason in refused.value.message
        assert tags_in(registry) == {"kaniko-executor": {}, "kaniko-warmer": {}}

    # a shard job before the images are published is refused, naming why
    where, out, status = graph.job("conformance", "github", "early-shard", extra={"SHARD": "1"})
    assert status == 2 and "not all published, signed and attested yet" in out, out[-3000:]

    # publish: the indexes joined (byte for byte the one machine's), signed and attested; no rolling tag
    where, out, status = graph.job("publish", "gitlab", "publish", tuple(records))
    assert status == 0, out[-3000:]
    assert "is published, signed and attested: the conformance shards come next" in out
    snap = _named(tags_in(registry))
    assert snap["kaniko-executor"] == {"v1.2.3": expected["executor"], "v1.2.3-slim": expected["slim"]}
    assert snap["kaniko-warmer"] == {"v1.2.3": expected["warmer"]}

    # the conformance shards, one job each, from both files
    shards = []
    for part, ci in zip(range(1, SHARDS + 1), ("github", "gitlab"), strict=True):
        extra = (
            {"SHARD": str(part)}
            if ci == "github"
            else {"CI_NODE_INDEX": str(part), "CI_NODE_TOTAL": str(SHARDS)}
        )
        where, out, status = graph.job("conformance", ci, f"shard-{part}", extra=extra)
        assert status == 0, f"{ci} shard {part}: {out[-3000:]}"
        written = json.loads((where / "shards" / f"shard-{part}.json").read_text())
        assert written["shard"] == f"{part}/{SHARDS}" and written["commit"] == graph.answer["RELEASE_COMMIT"]
        assert written["executors"]["executor"].endswith("@" + expected["executor"])
        shards.append(where / "shards")
    assert _named(tags_in(registry)) == snap  # testing moves nothing

    # the release job with a shard left out: refused before anything is built or pushed
    lacking = tmp_path / "lacking" / "shards"
    lacking.mkdir(parents=True)
    shutil.copy(shards[0] / "shard-1.json", lacking)
    where, out, status = graph.job("release", "github", "release-lacking", (lacking,))
    assert (
        status == 2 and "no result for shard(s) 2/2: the release cannot say the whole suite passed" in out
    ), out[-3000:]
    assert _named(tags_in(registry)) == snap

    # the release job: the shards joined; the fake executor fails cases, so the gate holds the rolling tags
    where, out, status = graph.job("release", "gitlab", "release", tuple(shards))
    assert status != 0 and "the conformance suite failed" in out, out[-3000:]
    assert "rolling tags were not moved" in out
    report = json.loads(sorted((where / "report").glob("release-v1.2.3-*.json"))[-1].read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert (
        stages["conformance"]["status"] == "failed" and "(from 2 shards)" in stages["conformance"]["detail"]
    )
    assert stages["test-result"]["status"] == "ok"  # the FAILED result is signed and attached
    assert {v: i["digest"] for v, i in report["images"].items()} == expected
    after = _named(tags_in(registry))
    assert {repo: after[repo] for repo in snap} == snap  # no rolling tag: the gate held them
    # the registry holds the joined evidence: a signed FAILED test result that names the shards' cases
    predicate = _test_result(registry, expected["executor"], local_sigstore.trust_config)
    assert predicate["result"] == "FAILED"
    assert {"conformance/executor/run-forms", "conformance/executor/scratch-copy"} <= set(
        predicate["failedTests"]
    )

    # the joined result is the one a single machine gets running the whole suite on the same images
    alone = tmp_path / "alone"
    ran = run_invoke(
        ["release", "--conformance", "quick", "--report-dir", str(alone),
         "--certificate-identity", localsigstore.LOCAL_IDENTITY, "--certificate-oidc-issuer", localsigstore.LOCAL_ISSUER],
        env={**graph.env(tmp_path / "alone-job"), "SIGSTORE_ID_TOKEN": localsigstore.mint_identity_token()},
        timeout=600,
    )  # fmt: skip
    assert ran.returncode != 0 and "the conformance suite failed" in ran.stderr, ran.stderr[-3000:]
    assert "rolling tags were not moved" in ran.stderr
    assert _cases(where / "report") == _cases(alone)
    # the one-machine release's own report: the stages to the gate, the failed cases, the Markdown section
    report_file = sorted(alone.glob("release-v1.2.3-*.json"))[-1]
    stages = {s["name"]: s["status"] for s in json.loads(report_file.read_text())["stages"]}
    assert list(stages)[-4:] == ["build-image", "conformance", "smoke", "test-result"]
    assert stages["conformance"] == "failed" and stages["test-result"] == "ok" and "rolling" not in stages
    failed = {(suite, name, variant) for suite, name, variant, status in _cases(alone) if status == "failed"}
    assert {("repository", "scratch-copy", "executor"), ("repository", "run-forms", "executor")} <= failed
    assert "### Conformance:" in report_file.with_suffix(".md").read_text()
    assert {repo: _named(tags_in(registry))[repo] for repo in snap} == snap
