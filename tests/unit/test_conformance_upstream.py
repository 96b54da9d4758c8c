"""Real bases through a pull-through cache (issue 23 item 2): ``--bases`` and ``--upstream`` refused with
the reason when wrong, ``auto`` saying which it took and why, each case's skip made again for real bases
(a digest-pinned Docker Hub base runs; a base on another registry is skipped with the reason), and the
registries.conf that sends buildah's docker.io to the cache only."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from pipeline.errors import RegistryError, UsageError
from pipeline.registry.reference import Reference
from pipeline.stages.conformance import stage, upstream
from pipeline.stages.conformance.upstream import BaseChoice, Upstream

if TYPE_CHECKING:
    from pipeline.services.podman import Podman

EXECUTOR = Reference.parse("127.0.0.1:5000/kaniko/executor@sha256:" + "a" * 64)
PINNED = "sha256:" + "b" * 64


class Said:
    """A progress that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, text: str) -> None:
        self.lines.append(text)

    def info(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.parametrize(
    ("bases", "url", "message"),
    [
        ("real", "", "--bases 'real' is not known"),
        ("stand-ins", "http://127.0.0.1:5000", "--upstream has no use with --bases stand-ins"),
        ("upstream", "ftp://mirror.example", "is not a registry URL"),
        ("upstream", "registry-1.docker.io", "is not a registry URL"),
        ("auto", "https://user:secret@mirror.example", "must not carry credentials"),
        ("upstream", "https://mirror.example/v2/library", "has a path, query or fragment"),
    ],
)
def test_bad_bases_options_are_refused_with_the_reason(bases: str, url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        BaseChoice(bases, url).check()
    assert "secret" not in caught.value.message  # credentials never repeated


def test_auto_takes_the_upstream_when_it_answers_and_says_which_it_took() -> None:
    asked: list[str] = []

    def answers(url: str, timeout: float) -> bool:
        asked.append(url)
        return True

    said = Said()
    chosen = upstream.choose("auto", "", said, answers)  # type: ignore[arg-type]
    assert chosen == Upstream("https://registry-1.docker.io") and asked == ["https://registry-1.docker.io"]
    assert said.lines == [
        "conformance bases: real bases from https://registry-1.docker.io through a pull-through cache "
        "(--bases auto: it answers)"
    ]


def test_auto_offline_takes_the_stand_ins_and_says_why() -> None:
    said = Said()
    chosen = upstream.choose("auto", "http://127.0.0.1:9", said, lambda url, timeout: False)  # type: ignore[arg-type]
    assert chosen is None
    assert said.lines == [
        "conformance bases: the offline stand-ins (--bases auto: http://127.0.0.1:9 does not answer)"
    ]


def test_upstream_that_does_not_answer_is_a_clear_failure() -> None:
    with pytest.raises(
        RegistryError, match=r"the upstream registry http://127.0.0.1:9 does not answer /v2/"
    ) as e:
        upstream.choose("upstream", "http://127.0.0.1:9/", Said(), lambda url, timeout: False)  # type: ignore[arg-type]
    assert "--bases stand-ins" in (e.value.hint or "")
    # stand-ins never ask anyone
    assert upstream.choose("stand-ins", "", Said(), lambda url, timeout: pytest.fail("asked")) is None  # type: ignore[arg-type]


def _cases(root: Path) -> Path:
    for name, text in {
        "pinned": f"FROM busybox@{PINNED}\nCOPY a /a\n",
        "tagged-pinned": f"FROM docker.io/library/debian:12@{PINNED}\nRUN true\n",
        "hub-image": "FROM team/tool:2\nRUN true\n",
        "elsewhere": "FROM quay.io/team/base:1\nRUN true\n",
        "by-arg": "ARG BASE=gcr.io/distroless/base:latest\nFROM ${BASE}\nRUN true\n",
        "standin": "FROM busybox\nRUN true\n",
        "net": "FROM alpine:3.20\nRUN apk add curl\n",
        "own-skip": "FROM busybox\nRUN true\n",
        "two-stages": f"FROM busybox@{PINNED} AS build\nRUN true\nFROM scratch\nCOPY --from=build /a /a\n",
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(text)
    (root / "own-skip" / "case.json").write_text('{"skip": "kept for later"}')
    return root


def test_offline_a_digest_pinned_base_is_skipped_as_today(tmp_path: Path) -> None:
    plan = stage.plan(
        executors={"executor": EXECUTOR}, cases_dir=_cases(tmp_path), quick=False, reference="none"
    )
    skips = {case.name: case.skip for case in plan.cases}
    assert (
        skips["pinned"]
        == f"its base busybox@{PINNED} is pinned by a digest that cannot be reproduced offline"
    )
    assert skips["hub-image"].startswith("its base team/tool:2 has no offline stand-in")
    assert skips["standin"] == "" and skips["own-skip"] == "kept for later"
    assert plan.upstream is None


def test_with_real_bases_digest_pinned_and_other_docker_hub_bases_run(tmp_path: Path) -> None:
    real = Upstream("https://registry-1.docker.io")
    plan = stage.plan(
        executors={"executor": EXECUTOR},
        cases_dir=_cases(tmp_path),
        quick=False,
        reference="none",
        real_bases=real,
    )
    skips = {case.name: case.skip for case in plan.cases}
    assert skips["pinned"] == skips["tagged-pinned"] == skips["hub-image"] == skips["standin"] == ""
    assert skips["elsewhere"] == (
        "its base quay.io/team/base:1 is not a Docker Hub image, and the pull-through cache serves only "
        "Docker Hub's names (from https://registry-1.docker.io)"
    )
    assert skips["by-arg"].startswith("its base gcr.io/distroless/base:latest is not a Docker Hub image")
    assert skips["net"] == "it needs the network (apk add)"  # as offline: RUN steps get no network promise
    assert skips["own-skip"] == "kept for later"  # a case's own reason is never replaced
    assert plan.upstream == real and not plan.needs_debian  # no stand-in is made for real bases
    by_name = {case.name: case for case in plan.cases}
    pinned = [f"docker.io/library/busybox@{PINNED}"]
    assert [str(ref) for ref in upstream.case_bases(by_name["pinned"])] == pinned
    # scratch is no image to pull, and an earlier stage is not a base
    assert skips["two-stages"] == ""
    assert [str(ref) for ref in upstream.case_bases(by_name["two-stages"])] == pinned


def test_buildah_reads_docker_io_from_the_cache_only() -> None:
    conf = tomllib.loads(upstream.registries_conf("127.0.0.1:41234"))
    assert conf["unqualified-search-registries"] == ["docker.io"]
    assert conf["registry"] == [{"prefix": "docker.io", "location": "127.0.0.1:41234", "insecure": True}]
    assert "mirror" not in conf["registry"][0]  # a mirror would fall back to the real Docker Hub


def test_kaniko_reads_docker_io_from_the_cache_only_and_the_stand_ins_as_before(tmp_path: Path) -> None:
    from pipeline.services import kaniko
    from pipeline.stages.conformance.builders import Kaniko
    from pipeline.stages.conformance.cases import Case

    NO_PODMAN = cast("Podman", None)  # the request is made without running anything
    (tmp_path / "Dockerfile").write_text(f"FROM busybox@{PINNED}\n")
    case = Case("pinned", tmp_path)
    destination = Reference.parse("127.0.0.1:5000/conformance/pinned:tar")
    real = kaniko.executor_args(
        Kaniko(NO_PODMAN, EXECUTOR, "127.0.0.1:5000", "127.0.0.1:6000").request(case, destination, [])
    )
    assert "--registry-mirror=127.0.0.1:6000" in real and "--insecure-registry=127.0.0.1:6000" in real
    assert "--skip-default-registry-fallback" in real  # never Docker Hub itself: the same bytes as buildah
    assert not any(arg.startswith("--registry-map") for arg in real)
    standins = kaniko.executor_args(
        Kaniko(NO_PODMAN, EXECUTOR, "127.0.0.1:5000").request(case, destination, [])
    )
    assert (
        "--registry-mirror=127.0.0.1:5000" in standins
        and "--registry-map=mirror.gcr.io=127.0.0.1:5000" in standins
    )
    assert "--skip-default-registry-fallback" not in standins


def test_the_report_names_the_bases_it_ran_on() -> None:
    from pipeline.stages.conformance import conformance_report
    from pipeline.stages.conformance.result import ConformanceResult

    offline = ConformanceResult(executor=str(EXECUTOR), reference="buildah")
    assert "Bases: the offline stand-ins." in conformance_report.markdown(offline)
    assert (
        "bases: the offline stand-ins" in offline.text()
        and offline.to_dict()["bases"] == "the offline stand-ins"
    )
    real = ConformanceResult(
        executor=str(EXECUTOR), reference="buildah", bases=Upstream("http://127.0.0.1:1").describe()
    )
    assert (
        "Bases: real bases from http://127.0.0.1:1 through a pull-through cache."
        in conformance_report.markdown(real)
    )


@pytest.mark.parametrize("task", ["release", "test-e2e"])
def test_a_release_refuses_unknown_conformance_bases_before_anything_runs(task: str, tmp_path: Path) -> None:
    from tests.support.cli import run_invoke

    done = run_invoke([task, "--conformance-bases", "cloud"], cache=tmp_path)
    assert done.returncode == 2, done.stderr[-1500:]
    assert "--bases 'cloud' is not known" in done.stderr and "Traceback" not in done.stderr
