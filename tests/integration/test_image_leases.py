"""Images a run pulls stay until no run on the machine needs them (pipeline/services/leases.py).

Two conformance runs of the same executor at once, against real podman, buildah and real registries: the
first pulls the executor image, the second finds it there; the first ends (and cleans up) while the second
still has its credential-helper check to run. That check must still find the image, and when both are
done the image is gone, as it was before either started. The two runs name the executor as users do: by
one name, by the same digest in two registries (a release's copies), or the first by its index digest and
the second by its platform manifest's digest in another registry: podman finds the image the first pulled
under the second's name too, so it is one image, and the second pulls nothing (issue 20, item 3: the
first's clean-up removed it, and the second's check failed with "image not known"). Also: an image that
was there before a run is never removed by it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.progress import Silent
from pipeline.registry.reference import Reference
from pipeline.services.podman import Podman
from pipeline.stages.conformance import stage
from pipeline.stages.conformance.result import ConformanceResult
from tests.support import fakeexecutor
from tests.support.registries import Factory

pytestmark = pytest.mark.slow


@pytest.fixture
def executor(fake_executor_image: Reference) -> Reference:
    return fake_executor_image


@pytest.fixture(params=["one name", "one digest in two registries", "index digest, then platform manifest's"])
def executors(
    request: pytest.FixtureRequest,
    fake_binary: Path,
    registry_factory: Factory,
    podman: Podman,
    tmp_path: Path,
) -> Iterator[tuple[Reference, Reference]]:
    """The names the first and the second run give the same executor, pushed as a release pushes it (an
    index) to two registries; both are removed from podman's storage afterwards. A label of its own makes
    it an image no other test on the machine uses, so that its removal is this test's to check."""
    env, label = ("FAKEKANIKO_BUILD=1",), secrets.token_hex(8)
    one, two = registry_factory.anonymous(), registry_factory.anonymous()
    index, _ = fakeexecutor.push_index(fake_binary, tmp_path / "layout-one", one.host, label=label, env=env)
    other_index, other_manifest = fakeexecutor.push_index(
        fake_binary, tmp_path / "layout-two", two.host, label=label, env=env
    )
    second = {"one name": index, "one digest in two registries": other_index}.get(
        request.param, other_manifest
    )
    yield index, second
    podman.rmi(str(index))
    podman.rmi(str(second))


WAIT = 900.0


class Signals(Silent):
    """A run's progress, used to order two real runs: ``cases`` is set once its image is there and its
    last case starts; before its credential-helper check it waits for ``before_helpers``."""

    def __init__(self, before_helpers: threading.Event) -> None:
        super().__init__()
        self.cases = threading.Event()
        self.before_helpers = before_helpers

    def step(self, message: str) -> None:
        if message.startswith("[") and message.split("]")[0] in ("[1/1", "[2/2"):
            self.cases.set()  # its last case starts: its image was pulled, or found
        if message.startswith("credential helpers"):
            assert self.before_helpers.wait(WAIT), "the other run did not finish"


def _suite(root: Path, count: int) -> Path:
    for number in range(count):
        case = root / f"copy-{number}"
        case.mkdir(parents=True)
        (case / "Dockerfile").write_text(f"FROM scratch\nCOPY hello.txt /hello-{number}.txt\n")
        (case / "hello.txt").write_text("hello\n")
    return root


def _helpers_reason(result: ConformanceResult) -> str:
    found = [case for case in result.cases if case.name == "credential-helpers"]
    assert len(found) == 1, result.to_dict()
    return found[0].reason


def test_two_conformance_runs_of_one_executor_at_once_keep_its_image_until_both_are_done(
    executors: tuple[Reference, Reference],
    podman: Podman,
    tmp_path: Path,
) -> None:
    named = dict(zip(("first", "second"), executors, strict=True))
    for ref in executors:
        assert not podman.image_exists(str(ref))  # the registry has it; podman's storage does not
    # the first run pulls the image and builds; the second starts, finds the image and builds; then the
    # first checks its helpers and ends; only then the second checks its helpers
    first_done, second_built = threading.Event(), threading.Event()
    first, second = Signals(before_helpers=second_built), Signals(before_helpers=first_done)
    second.cases = second_built
    results: dict[str, ConformanceResult] = {}
    errors: list[BaseException] = []

    def conformance(name: str, cases: int, progress: Signals, done: threading.Event | None) -> None:
        try:
            plan = stage.plan(
                executors={"executor": named[name]},
                cases_dir=_suite(tmp_path / name / "cases", cases),
                quick=False,
                reference="buildah",
            )
            cache = tmp_path / name / "cache"
            cache.mkdir()
            results[name] = stage.execute(plan, podman=podman, cache_dir=cache, progress=progress)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
            first.cases.set()
            second_built.set()
        finally:
            if done is not None:
                done.set()

    one = threading.Thread(target=conformance, args=("first", 1, first, first_done))
    two = threading.Thread(target=conformance, args=("second", 2, second, None))
    one.start()
    assert first.cases.wait(WAIT), "the first run never started its cases"
    assert podman.image_exists(str(named["first"]))  # the first run pulled it
    two.start()
    one.join(WAIT)
    two.join(WAIT)
    assert not errors, errors
    for name, cases in (("first", 1), ("second", 2)):
        built = {case.name: case.status for case in results[name].cases if case.name.startswith("copy-")}
        assert built == {f"copy-{n}": "passed" for n in range(cases)}, results[name].to_dict()
        reason = _helpers_reason(results[name])
        # the fixture image ships no credential helpers: each helper is missing from an image that is there
        assert "/kaniko/docker-credential-acr-env --help exited" in reason, reason
        assert "image not known" not in reason, f"{name}: {reason}"
    # the second run ended last: it removed what the first pulled, under either name
    for ref in executors:
        assert not podman.image_exists(str(ref))


def test_an_image_that_was_there_before_stays(executor: Reference, podman: Podman) -> None:  # noqa: F811
    image = str(executor)
    podman.pull(image, tls_verify=False)
    try:
        with podman.borrowed(image, tls_verify=False) as pulled:
            assert not pulled
            with podman.borrowed(image, tls_verify=False) as again:
                assert not again
        assert podman.image_exists(image)
        podman.discard(image)  # not pulled by a run: a clean-up leaves it too
        assert podman.image_exists(image)
    finally:
        podman.rmi(image)
