"""Run a CI job's own commands on this machine, as the workflow files write them.

A GitHub job's `run:` steps and a GitLab job's `script:` lines run in bash (`-eo pipefail`, as both CIs
run them) in a working directory of the test's (Invoke finds the project's tasks.py with --search-root),
with the variables the test gives in place of the CI's. What the CI
provides and this machine cannot is stood in for, and said here: `uses:` steps (checkout, setup-python,
the artifacts: the test hands them over as directories), the install step (the test runs in a venv that
has the project installed already) and `invoke setup` (this machine is set up: the suite needs it anyway),
and `.venv/bin/invoke` is this interpreter's Invoke.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github" / "workflows" / "release.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
INVOKE = f"{shlex.quote(sys.executable)} -m invoke --search-root {shlex.quote(str(ROOT))}"


def _installs(script: str) -> bool:
    line = script.strip()
    return "pip install" in line or line.startswith("python -m venv") or line == ".venv/bin/invoke setup"


def github_file() -> dict[str, Any]:
    return dict(yaml.safe_load(GITHUB.read_text()))


def gitlab_file() -> dict[str, Any]:
    return dict(yaml.safe_load(GITLAB.read_text()))


def github_job(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(GITHUB.read_text())["jobs"][name])


def gitlab_job(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(GITLAB.read_text())[name])


def signs(name: str, ci: str) -> bool:
    """Whether the job may sign: GitHub's `id-token: write`, GitLab's SIGSTORE_ID_TOKEN in `id_tokens`."""
    if ci == "github":
        return bool(github_job(name).get("permissions", {}).get("id-token") == "write")
    return "SIGSTORE_ID_TOKEN" in (gitlab_job(name).get("id_tokens") or {})


def github_scripts(name: str) -> list[str]:
    """The job's `run:` steps, the install step left out (see the module docstring)."""
    steps = github_job(name)["steps"]
    return [str(step["run"]) for step in steps if "run" in step and not _installs(str(step["run"]))]


def gitlab_scripts(name: str) -> list[str]:
    """The job's `script:` lines, the venv and install lines left out (see the module docstring)."""
    return [str(line) for line in gitlab_job(name)["script"] if not _installs(str(line))]


def needs(ci: str) -> dict[str, list[str]]:
    """The release's jobs (those ``release`` needs, directly or not) and the jobs each needs."""
    if ci == "github":
        jobs = dict(yaml.safe_load(GITHUB.read_text())["jobs"])
    else:
        jobs = {k: v for k, v in yaml.safe_load(GITLAB.read_text()).items() if isinstance(v, dict)}
    graph: dict[str, list[str]] = {}
    todo = ["release"]
    while todo:
        name = todo.pop()
        given = jobs[name].get("needs") or []
        graph[name] = [given] if isinstance(given, str) else list(given)
        todo += [n for n in graph[name] if n not in graph]
    return graph


def order(graph: Mapping[str, list[str]]) -> list[str]:
    """The jobs in an order ``needs:`` allows (each after every job it needs; ties by name)."""
    done: list[str] = []
    while len(done) < len(graph):
        ready = sorted(n for n, deps in graph.items() if n not in done and all(d in done for d in deps))
        assert ready, f"the needs: of {sorted(set(graph) - set(done))} form a cycle"
        done.append(ready[0])
    return done


def run(
    scripts: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Each script in order, in one bash, in ``cwd``; the first failure ends it."""
    text = "\n".join(script.replace(".venv/bin/invoke", INVOKE) for script in scripts)
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", text],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def answer(path: Path) -> dict[str, str]:
    """NAME=value lines ($GITHUB_OUTPUT, a dotenv report) as a dict."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
