"""Deploy recipes for the published executor: a Kubernetes Pod, a GitLab runner, a GitLab CI job.

Each pins the executor by digest and runs it with the security profile this project tests with
podman: every capability dropped but CHOWN, FOWNER and DAC_OVERRIDE, no privilege escalation, and (in
Kubernetes) its own user namespace (`hostUsers: false`), so root in the container is not root on the node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.errors import UsageError
from pipeline.registry.reference import Reference

TARGETS = ("k8s-pod", "gitlab-runner", "gitlab-ci")
CAPABILITIES = ("CHOWN", "FOWNER", "DAC_OVERRIDE")


@dataclass(frozen=True)
class Recipe:
    target: str
    text: str


def _pinned(executor: str) -> Reference:
    ref = Reference.parse(executor)
    if not ref.digest:
        raise UsageError(
            f"--executor {executor!r} is not pinned by digest",
            hint="pass REPOSITORY@sha256:..., or run `invoke publish` first so the published digest is used",
        )
    return ref


def k8s_pod(
    executor: str, *, context: str, destination: str, dockerfile: str = "Dockerfile"
) -> dict[str, Any]:
    """The kaniko Pod: its own user namespace, no privilege escalation, only the three capabilities."""
    ref = _pinned(executor)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kaniko", "labels": {"app.kubernetes.io/name": "kaniko"}},
        "spec": {
            # Root in the container maps to an unprivileged user on the node (Kubernetes 1.33+ by default).
            "hostUsers": False,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "kaniko",
                    "image": str(ref),
                    "args": [
                        f"--context={context}",
                        f"--dockerfile={dockerfile}",
                        f"--destination={destination}",
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "privileged": False,
                        "capabilities": {"drop": ["ALL"], "add": list(CAPABILITIES)},
                    },
                    "volumeMounts": [
                        {"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "docker-config",
                    "secret": {
                        "secretName": "kaniko-docker-config",
                        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                    },
                }
            ],
        },
    }


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def gitlab_runner(executor: str) -> str:
    """A GitLab runner (Kubernetes executor) section that runs jobs with the same profile."""
    ref = _pinned(executor)
    caps = ", ".join(_toml_string(cap) for cap in CAPABILITIES)
    return "\n".join(
        [
            "# GitLab runner configuration (config.toml) for kaniko jobs on Kubernetes.",
            "# Every build pod gets its own user namespace and only the capabilities kaniko needs.",
            "[[runners]]",
            '  name = "kaniko"',
            '  executor = "kubernetes"',
            "  [runners.kubernetes]",
            f"    image = {_toml_string(str(ref))}",
            f"    allowed_images = [{_toml_string(str(ref))}]",
            "    host_users = false",
            "    privileged = false",
            "    allow_privilege_escalation = false",
            '    cap_drop = ["ALL"]',
            f"    cap_add = [{caps}]",
            "",
        ]
    )


def gitlab_ci(executor: str) -> dict[str, Any]:
    """A .gitlab-ci.yml job that builds the repository's Dockerfile with the pinned executor."""
    ref = _pinned(executor)
    script = [
        # Credentials go to kaniko only as its Docker config file, never on the command line.
        "mkdir -p /kaniko/.docker",
        'printf \'{"auths":{"%s":{"auth":"%s"}}}\' "$CI_REGISTRY" '
        '"$(printf \'%s:%s\' "$CI_REGISTRY_USER" "$CI_REGISTRY_PASSWORD" | base64 | tr -d \'\\n\')" '
        "> /kaniko/.docker/config.json",
        '/kaniko/executor --context "$CI_PROJECT_DIR" --dockerfile "$CI_PROJECT_DIR/Dockerfile" '
        '--destination "$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA"',
    ]
    return {
        "build-image": {
            "stage": "build",
            "image": {"name": str(ref), "entrypoint": [""]},
            "variables": {"DOCKER_CONFIG": "/kaniko/.docker"},
            "script": script,
            "rules": [{"if": "$CI_COMMIT_BRANCH"}],
        }
    }


def executor_from_record(publish: dict[str, Any]) -> str:
    """``REPOSITORY@DIGEST`` of the executor that the last `invoke publish` recorded."""
    image = (publish.get("images") or {}).get("executor")
    if not isinstance(image, dict) or not image.get("repository") or not image.get("digest"):
        raise UsageError(
            "the last `invoke publish` published no executor image",
            hint="publish the executor variant, or pass --executor REPOSITORY@sha256:...",
        )
    return f"{image['repository']}@{image['digest']}"


def default_destination(executor: str) -> str:
    """``PREFIX/kaniko-nginx:latest``: the test image beside the executor's repository."""
    ref = _pinned(executor)
    prefix = f"{ref.registry}/{ref.repository}".rsplit("/", 1)[0]
    return f"{prefix}/kaniko-nginx:latest"


def render(
    target: str,
    executor: str,
    *,
    context: str = "dir:///workspace",
    destination: str,
    dockerfile: str = "Dockerfile",
) -> Recipe:
    """The recipe for ``target``; the Pod's context and destination are kaniko's own flags."""
    if target == "k8s-pod":
        body = k8s_pod(executor, context=context, destination=destination, dockerfile=dockerfile)
        return Recipe(target, yaml.safe_dump(body, sort_keys=False))
    if target == "gitlab-runner":
        return Recipe(target, gitlab_runner(executor))
    if target == "gitlab-ci":
        return Recipe(target, yaml.safe_dump(gitlab_ci(executor), sort_keys=False, width=1000))
    raise UsageError(f"unknown render target {target!r}", hint="choose one of: " + ", ".join(TARGETS))
