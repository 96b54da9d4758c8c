"""Test results as in-toto says them: the predicate ``https://in-toto.io/attestation/test-result/v0.1``.

Any test stage (smoke today, conformance later) hands over a plain list of ``(test name, passed)``
and the resource descriptors of what it ran; :func:`predicate` makes the predicate. ``result`` is
``PASSED`` only when there was at least one test and none failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.errors import UsageError

TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
PASSED, WARNED, FAILED = "PASSED", "WARNED", "FAILED"
RESULTS = (PASSED, WARNED, FAILED)


def predicate(
    results: Sequence[tuple[str, bool]],
    configuration: Sequence[Mapping[str, Any]],
    *,
    url: str | None = None,
    warned: Sequence[str] = (),
) -> dict[str, Any]:
    """The test-result predicate for ``results`` (each test's name and whether it passed).

    ``configuration``: resource descriptors (``name``, ``uri``, ``digest``...) of what was run;
    ``url``: where the run can be seen (a CI job), if anywhere; ``warned``: tests that did not pass but
    do not fail the result (``warnedTests``: reported, not gating).
    """
    if not results:
        raise UsageError("a test result needs at least one test", hint="run the tests first")
    if not configuration:
        raise UsageError("a test result must name what was run (its configuration)")
    names = [name for name, _ in results]
    if len(set(names)) != len(names) or not all(name.strip() for name in names):
        raise UsageError(f"test names must be unique and not empty: {names}")
    failed = [name for name, ok in results if not ok]
    body: dict[str, Any] = {
        "result": FAILED if failed else PASSED,
        "configuration": [dict(item) for item in configuration],
        "passedTests": [name for name, ok in results if ok],
        "failedTests": failed,
    }
    if warned:
        body["warnedTests"] = list(warned)
    if url:
        body["url"] = url
    return body


def result_of(body: Mapping[str, Any]) -> str | None:
    """The ``result`` of a test-result predicate (None when it has none that in-toto defines)."""
    found = body.get("result")
    return found if isinstance(found, str) and found in RESULTS else None


RELEASE = "release"  # the configuration entry that names what was tested: the release's tag and commit


def release_descriptor(version: str, tag: str, commit: str) -> dict[str, Any]:
    """The resource descriptor of the release a test result is about (its ``configuration`` entry)."""
    return {
        "name": RELEASE,
        "digest": {"gitCommit": commit},
        "annotations": {"version": version, "tag": tag},
    }


def names_release(body: Mapping[str, Any], version: str, tag: str, commit: str) -> bool:
    """Whether a test-result predicate says it tested this release (version, tag and commit)."""
    configuration = body.get("configuration")
    if not isinstance(configuration, list):
        return False
    wanted = release_descriptor(version, tag, commit)
    return any(isinstance(item, dict) and item == wanted for item in configuration)
