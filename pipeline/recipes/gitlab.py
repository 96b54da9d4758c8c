"""GitLab recipes: a CI job that builds with the executor, and a runner (Kubernetes executor) section
whose default image is the executor.

GitLab's runner runs a job's ``script`` with a shell inside the job's image (it starts ``sh`` and feeds
it the script). The executor, slim and warmer images have no shell; the debug image has busybox at
``/busybox`` (and ``/bin/sh``), which is why kaniko's own GitLab guide uses it. So both are only
rendered for a variant with a shell, and refused, with the reason, for any other.
"""

from __future__ import annotations

import json
from typing import Any

from pipeline.errors import UsageError
from pipeline.recipes import CAPABILITIES
from pipeline.registry.reference import Reference

# The variants whose image has a shell the runner can start, and where it is.
SHELLS = {"debug": "/busybox/sh"}
DIGEST_FILE = "image-digest"  # written by kaniko into the project directory, kept as an artifact


def require_shell(variant: str) -> str:
    """The shell of ``variant``'s image; a UsageError for a variant that has none."""
    shell = SHELLS.get(variant)
    if shell is None:
        raise UsageError(
            f"the {variant} image has no shell, and GitLab's runner runs a job's script with one: "
            "a gitlab-ci job on it cannot start",
            hint="render it for the debug variant (busybox at /busybox): --variant debug, or an "
            "--executor that is the published debug image",
        )
    return shell


def ci_job(executor: Reference, variant: str) -> dict[str, Any]:
    """A .gitlab-ci.yml job that builds the project's Dockerfile with the pinned debug executor."""
    require_shell(variant)
    script = [
        # Credentials go to kaniko only as its Docker config file, never on a command line: printf is a
        # shell builtin, and the runner echoes each line before expanding it.
        "mkdir -p /kaniko/.docker",
        'printf \'{"auths":{"%s":{"auth":"%s"}}}\' "$CI_REGISTRY" '
        '"$(printf \'%s:%s\' "$CI_REGISTRY_USER" "$CI_REGISTRY_PASSWORD" | base64 | tr -d \'\\n\')" '
        "> /kaniko/.docker/config.json",
        '/kaniko/executor --context="$CI_PROJECT_DIR" --dockerfile="$CI_PROJECT_DIR/Dockerfile" '
        '--destination="$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA" '
        f'--digest-file="$CI_PROJECT_DIR/{DIGEST_FILE}" $KANIKO_EXTRA_ARGS',
    ]
    return {
        "build-image": {
            "stage": "build",
            # entrypoint [""]: the runner starts its shell, not the image's /kaniko/executor
            "image": {"name": str(executor), "entrypoint": [""]},
            "variables": {
                "DOCKER_CONFIG": "/kaniko/.docker",
                # more executor flags, e.g. --insecure for a registry on plain HTTP
                "KANIKO_EXTRA_ARGS": "",
            },
            "script": script,
            "artifacts": {"paths": [DIGEST_FILE]},
            "rules": [{"if": "$CI_COMMIT_BRANCH"}],
        }
    }


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def runner(executor: Reference, variant: str) -> str:
    """A GitLab runner config.toml section (Kubernetes executor) that runs jobs with the same profile.

    Every key is one the runner's config knows (tests check them against its struct tags). The runner
    has no key for a pod's ``hostUsers``: a ``pod_spec`` patch sets it, which needs the runner's
    FF_USE_ADVANCED_POD_SPEC_CONFIGURATION feature flag.
    """
    require_shell(variant)  # the runner runs every job's script in this image, with a shell
    ref = _toml(str(executor))
    caps = ", ".join(_toml(cap) for cap in CAPABILITIES)
    return "\n".join(
        [
            "# GitLab runner configuration (config.toml) for kaniko jobs on Kubernetes.",
            "# Every build pod gets its own user namespace and only the capabilities kaniko needs.",
            "[[runners]]",
            '  name = "kaniko"',
            '  executor = "kubernetes"',
            "  [runners.feature_flags]",
            "    FF_USE_ADVANCED_POD_SPEC_CONFIGURATION = true",
            "  [runners.kubernetes]",
            f"    image = {ref}",
            f"    allowed_images = [{ref}]",
            "    privileged = false",
            "    allow_privilege_escalation = false",
            '    cap_drop = ["ALL"]',
            f"    cap_add = [{caps}]",
            "    [[runners.kubernetes.pod_spec]]",
            '      name = "host-users"',
            '      patch_type = "strategic"',
            "      patch = '{\"hostUsers\": false}'",
            "",
        ]
    )
