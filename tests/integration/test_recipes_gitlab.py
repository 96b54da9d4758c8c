"""The rendered GitLab CI job, run the way GitLab's runner runs it: the job's image with its entrypoint
cleared, ``sh`` started in it, and the job script (variables exported, each line echoed, then run) fed
on stdin; under the kaniko README's profile, in podman, building a project directory and pushing to a
local registry with htpasswd auth. The executor is the fixture fork's debug image, pinned by digest."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pipeline.services.kaniko import KANIKO_CAPS
from pipeline.services.podman import Mount, Podman, RunSpec
from pipeline.stages import render
from tests.support import fakeexecutor
from tests.support.cli import run_invoke
from tests.support.recipeimages import Published
from tests.support.registries import AuthRegistry

pytestmark = pytest.mark.slow

PROJECT_DIR = "/builds/group/project"
README_CAPS = f"{(1 << 0) | (1 << 1) | (1 << 3):016x}"  # CHOWN, DAC_OVERRIDE, FOWNER
ACCEPT = "application/vnd.oci.image.manifest.v1+json"
# The runner starts `sh -c` with a script that execs the first shell it finds (bash first, then sh).
FIND_SHELL = 'for s in /bin/bash /bin/sh /busybox/sh; do if [ -x "$s" ]; then exec "$s"; fi; done; echo "shell not found"; exit 1'


def job_script(job: dict[str, Any], variables: dict[str, str]) -> str:
    """What the runner feeds the shell: errexit (and pipefail where the shell has it), the variables
    exported, then each script line echoed unexpanded and run."""
    lines = ['case "$(set -o)" in *pipefail*) set -o pipefail;; esac', "set -o errexit"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    lines.append('cd "$CI_PROJECT_DIR"')
    for line in job["script"]:
        lines += [f"echo {shlex.quote('$ ' + line)}", line]
    return "\n".join(lines) + "\n"


def run_job(
    podman: Podman, job: dict[str, Any], variables: dict[str, str], project: Path
) -> subprocess.CompletedProcess[str]:
    image = job["image"]
    spec = RunSpec(
        image=image["name"],
        args=["sh", "-c", FIND_SHELL],
        remove=True,
        cap_drop=("ALL",),
        cap_add=KANIKO_CAPS,
        no_new_privileges=True,
        mounts=[Mount(project, PROJECT_DIR, read_only=False)],
        network="host",  # the registry listens on the host's 127.0.0.1
        entrypoint="" if image.get("entrypoint") == [""] else None,
    )
    argv = spec.argv()
    argv.insert(1, "--interactive")
    return subprocess.run(
        [podman.binary, *argv],
        input=job_script(job, variables),
        env=podman.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def project_dir(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (project / "hello.txt").write_text("hello from the GitLab job\n")
    return project


def ci_variables(job: dict[str, Any], dest: AuthRegistry, sha: str) -> dict[str, str]:
    """The job's own variables, then GitLab's predefined ones and a project variable (--insecure for the
    plain-HTTP test registry), which take precedence over the job's as they do in GitLab."""
    return {
        **job["variables"],
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_SHORT_SHA": sha,
        "CI_PROJECT_DIR": PROJECT_DIR,
        "CI_REGISTRY": dest.host,
        "CI_REGISTRY_IMAGE": f"{dest.host}/group/project",
        "CI_REGISTRY_USER": dest.username,
        "CI_REGISTRY_PASSWORD": dest.password,
        "KANIKO_EXTRA_ARGS": "--insecure",
    }


def test_the_gitlab_job_builds_and_pushes_in_the_debug_image(
    published: Published,
    podman: Podman,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
) -> None:
    recipe = render.render("gitlab-ci", published.debug, destination="unused")
    job = yaml.safe_load(recipe.text)["build-image"]
    assert job["image"]["name"] == published.debug
    sha = secrets.token_hex(4)
    project = project_dir(tmp_path)
    result = run_job(podman, job, ci_variables(job, registry_htpasswd, sha), project)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]

    (seen,) = fakeexecutor.reports(output)
    # The job log: the runner's echo of each line, unexpanded, and kaniko's output; neither shows the
    # password or the auth string. (The fake executor's report lists its environment, where GitLab
    # puts CI_REGISTRY_PASSWORD for every job, so the report line is left out of this check.)
    log = "\n".join(line for line in output.splitlines() if not line.startswith(fakeexecutor.REPORT_MARK))
    assert "$ mkdir -p /kaniko/.docker" in log and "$ /kaniko/executor" in log
    auth = base64.b64encode(f"{registry_htpasswd.username}:{registry_htpasswd.password}".encode()).decode()
    assert registry_htpasswd.password not in log and auth not in log

    # the README's profile, seen by the executor; its credentials are the config the script wrote,
    # and never on its command line
    assert (seen["uid"], seen["cap_eff"], seen["no_new_privs"]) == (0, README_CAPS, "1")
    assert seen["auth_sha256"] == {registry_htpasswd.host: hashlib.sha256(auth.encode()).hexdigest()}
    for text in seen["argv"]:
        assert registry_htpasswd.password not in text and auth not in text
    assert f"--destination={registry_htpasswd.host}/group/project:{sha}" in seen["argv"]
    assert seen["dockerfile_bytes"] == (project / "Dockerfile").stat().st_size

    # the registry holds the image under the commit's tag, and the job's artifact names its digest
    response = requests.head(
        f"{registry_htpasswd.url}/v2/group/project/manifests/{sha}",
        headers={"Accept": ACCEPT},
        auth=registry_htpasswd.auth,
        timeout=10,
    )
    assert response.status_code == 200
    digest = (project / "image-digest").read_text().strip()
    assert digest == response.headers["Docker-Content-Digest"] == seen["pushed"]
    # nothing but the artifact was added to the project directory (the config stays in the container)
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile", "hello.txt", "image-digest"]


def test_the_job_cannot_start_in_the_executor_image_and_render_refuses_it(
    published: Published,
    podman: Podman,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
) -> None:
    # what a GitLab user would see with the executor image: there is no shell to run the script
    job = yaml.safe_load(render.render("gitlab-ci", published.debug, destination="unused").text)[
        "build-image"
    ]
    job["image"]["name"] = published.executor
    result = run_job(podman, job, ci_variables(job, registry_htpasswd, "0"), project_dir(tmp_path))
    assert result.returncode != 0
    assert '"sh": executable file not found' in result.stderr, result.stderr

    # so `invoke render` refuses the executor variant for gitlab-ci, with the reason
    cache = tmp_path / "cache"
    (cache / "runs").mkdir(parents=True)
    repository, digest = published.executor.split("@")
    (cache / "runs" / "last.json").write_text(
        json.dumps({"publish": {"images": {"executor": {"repository": repository, "digest": digest}}}})
    )
    refused = run_invoke(["render", "--target", "gitlab-ci", "--executor", published.executor], cache=cache)
    assert refused.returncode == 2, refused.stderr
    assert "the executor image has no shell" in refused.stderr and "--variant debug" in refused.stderr
    assert "Traceback" not in refused.stderr
