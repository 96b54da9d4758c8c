"""What loads when: `invoke --list` and a task's first output must not wait for heavy libraries.

Each check runs in a fresh interpreter and names the modules that a light import pulled in anyway.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.cli import ROOT

# (yaml is not here: invoke itself imports it to read invoke.yaml)
HEAVY = ("sigstore", "cryptography", "git", "requests", "urllib3", "semver", "pydantic")


def _loaded_after(statement: str) -> set[str]:
    """The top-level packages of HEAVY that are in sys.modules after ``statement``, in a new process."""
    probe = (
        f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1])) & set(HEAVY)


def test_the_task_list_loads_no_heavy_library() -> None:
    # what `invoke --list` imports: tasks.py and its collection
    assert _loaded_after("import tasks") == set()


@pytest.mark.parametrize(
    "module",
    [
        "pipeline.stages.sign",
        "pipeline.stages.verify_images",
        "pipeline.stages.attest",
        "pipeline.stages.reproduce",
        "pipeline.signing.verify",
        "pipeline.signing.attach",
        "pipeline.release",
    ],
)
def test_signing_modules_load_sigstore_only_when_they_sign_or_verify(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert not loaded & {"sigstore", "cryptography", "pydantic", "git"}, f"{module} loads {loaded}"


def test_the_build_task_loads_no_git_and_no_http_client() -> None:
    loaded = _loaded_after("import tasks, pipeline.stages.build, pipeline.source.checkout")
    assert not loaded & {"git", "requests", "sigstore"}, loaded


def test_loading_sigstore_when_it_is_used_still_works() -> None:
    # the lazy imports are real: parsing a bundle that is not one reports a VerifyError, from sigstore
    statement = (
        "from pipeline.signing import bundles\n"
        "from pipeline.errors import VerifyError\n"
        "try:\n    bundles.parse(b'{}', 'test')\nexcept VerifyError as exc:\n    print(exc.message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", statement], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.startswith("test is not a valid Sigstore bundle"), done.stdout + done.stderr
