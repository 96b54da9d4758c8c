"""Issue 15 item 12: the CI files the project ships are checked as an attacker would read them.

zizmor (offline, the strictest ``auditor`` persona) on every GitHub workflow, and check-jsonschema's
vendored ``github-workflows`` and ``gitlab-ci`` schemas on every workflow file: any finding fails.
Both tools are test dependencies (pyproject.toml), so a missing one is an error, not a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
GITLAB = [path for path in [ROOT / ".gitlab-ci.yml"] if path.exists()]
_SHA_PIN = re.compile(r"[^@\s]+@[0-9a-f]{40}", re.ASCII)


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is a test dependency: pip install -e '.[test]'"
    return found


def _names(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


def test_the_project_ships_workflows() -> None:
    """The checks below run on each file found: finding none would make them pass vacuously."""
    assert ROOT / ".github" / "workflows" / "release.yml" in GITHUB
    assert ROOT / ".github" / "workflows" / "test.yml" in GITHUB
    assert GITLAB == [ROOT / ".gitlab-ci.yml"]


@pytest.mark.parametrize("workflow", GITHUB, ids=_names(GITHUB))
def test_zizmor_finds_nothing(workflow: Path) -> None:
    result = subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "auditor", "--format", "json", str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(result.stdout or "null")
    assert findings == [], (
        "\n".join(f"{f['ident']}: {f['desc']}" for f in findings or []) or result.stderr[-2000:]
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("workflow", "schema"),
    [(path, "vendor.github-workflows") for path in GITHUB] + [(path, "vendor.gitlab-ci") for path in GITLAB],
    ids=_names(GITHUB) + _names(GITLAB),
)
def test_the_workflow_schema_accepts_it(workflow: Path, schema: str) -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", schema, str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", GITHUB, ids=_names(GITHUB))
def test_actions_are_pinned_by_sha_with_the_release_named(workflow: Path) -> None:
    """What zizmor checks, and the comment it does not: each SHA says which release it is."""
    text = workflow.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for action, rest in uses:
        assert _SHA_PIN.fullmatch(action), f"{action} is not pinned to a full commit SHA"
        assert re.search(r"#\s*v\d+(\.\d+)*", rest), f"{action}: add the release as a comment (# vX.Y.Z)"
    steps = yaml.safe_load(text)["jobs"]
    for job in steps.values():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False
