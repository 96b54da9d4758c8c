"""Run a CI job's own commands on this machine, as the workflow files write them.

A GitHub job's `run:` steps and a GitLab job's `script:` lines run in bash (`-eo pipefail`, as both CIs
run them) in a working directory of the test's (Invoke finds the project's tasks.py with --search-root),
with the variables the test gives in place of the CI's. What the CI
provides and this machine cannot is stood in for, and said here: `uses:` steps (checkout, setup-python)
and the install step (the test runs in a venv that has the project installed already), and
`.venv/bin/invoke` is this interpreter's Invoke.
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
    return "pip install" in script or script.strip().startswith("python -m venv")


def github_job(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(GITHUB.read_text())["jobs"][name])


def gitlab_job(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(GITLAB.read_text())[name])


def github_scripts(name: str) -> list[str]:
    """The job's `run:` steps, the install step left out (see the module docstring)."""
    steps = github_job(name)["steps"]
    return [str(step["run"]) for step in steps if "run" in step and not _installs(str(step["run"]))]


def gitlab_scripts(name: str) -> list[str]:
    """The job's `script:` lines, the venv and install lines left out (see the module docstring)."""
    return [str(line) for line in gitlab_job(name)["script"] if not _installs(str(line))]


def run(scripts: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Each script in order, in one bash, in ``cwd``; the first failure ends it."""
    text = "\n".join(script.replace(".venv/bin/invoke", INVOKE) for script in scripts)
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", text],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def answer(path: Path) -> dict[str, str]:
    """NAME=value lines ($GITHUB_OUTPUT, a dotenv report) as a dict."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
