"""Kubernetes manifests that run the executor: a Pod, and a Job in a namespace of its own.

The security profile is the one the project tests with podman: only CHOWN, FOWNER and DAC_OVERRIDE,
no privilege escalation, the runtime's seccomp profile, and its own user namespace (``hostUsers:
false``) so root in the container is not root on the node. kaniko runs as root and adds capabilities,
which the ``restricted`` Pod Security Standard forbids; ``baseline`` allows exactly these three, so the
Job's namespace enforces ``baseline``.

Credentials come from a Secret holding ``config.json`` (a Docker config), mounted read-only at
``/kaniko/.docker``; the recipes never contain credentials. The build context is a ``workspace``
volume (a PersistentVolumeClaim) at ``/workspace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.recipes import CAPABILITIES
from pipeline.registry.reference import Reference

DOCKER_CONFIG_DIR = "/kaniko/.docker"
WORKSPACE = "/workspace"
POD_SECURITY_LEVEL = "baseline"
BACKOFF_LIMIT = 2  # a build that failed three times will not pass on the fourth
TTL_AFTER_FINISHED = 86400  # a day to read the logs, then the Job and its Pod go
ACTIVE_DEADLINE = 3600


@dataclass(frozen=True)
class Build:
    """What kaniko is asked to build, and the names of the objects around it."""

    executor: Reference
    destination: str
    context: str = "dir:///workspace"
    dockerfile: str = "Dockerfile"
    name: str = "kaniko"
    tar_path: str | None = None  # build into a tarball instead of pushing (--no-push --tar-path)

    @property
    def secret(self) -> str:
        return f"{self.name}-docker-config"

    @property
    def claim(self) -> str:
        return f"{self.name}-workspace"

    @property
    def pushes(self) -> bool:
        return self.tar_path is None


def _args(build: Build) -> list[str]:
    args = [
        f"--context={build.context}",
        f"--dockerfile={build.dockerfile}",
        f"--destination={build.destination}",
    ]
    if build.tar_path is not None:
        args += ["--no-push", f"--tar-path={build.tar_path}"]
    return args


def pod_spec(build: Build) -> dict[str, Any]:
    """The spec both recipes share: one kaniko container with the README's profile."""
    mounts: list[dict[str, Any]] = [{"name": "workspace", "mountPath": WORKSPACE}]
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": build.claim}}
    ]
    if build.pushes:
        mounts.append({"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
        # The Secret's key is config.json itself, so no `items` remapping is needed (podman 4.3's
        # `kube play` ignores `items`), and `optional: false` is spelled out (4.3 crashes without it).
        volumes.append({"name": "docker-config", "secret": {"secretName": build.secret, "optional": False}})
    return {
        # Root in the container maps to an unprivileged user on the node (Kubernetes 1.33+ by default).
        "hostUsers": False,
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "kaniko",
                "image": str(build.executor),
                "args": _args(build),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"], "add": list(CAPABILITIES)},
                },
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }


def _labels(build: Build) -> dict[str, str]:
    return {"app.kubernetes.io/name": "kaniko", "app.kubernetes.io/instance": build.name}


def pod(build: Build) -> dict[str, Any]:
    """The kaniko Pod (the kaniko README's example, with the profile and a workspace volume)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": build.name, "labels": _labels(build)},
        "spec": pod_spec(build),
    }


def namespace(name: str) -> dict[str, Any]:
    """A namespace that enforces the ``baseline`` Pod Security Standard (``restricted`` forbids kaniko)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
                "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
            },
        },
    }


def job(build: Build, namespace_name: str) -> dict[str, Any]:
    """A Job that runs the build once, retries it at most BACKOFF_LIMIT times, and cleans up after itself."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": build.name, "namespace": namespace_name, "labels": _labels(build)},
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "activeDeadlineSeconds": ACTIVE_DEADLINE,
            "template": {"metadata": {"labels": _labels(build)}, "spec": pod_spec(build)},
        },
    }


def secret_command(build: Build, namespace_name: str | None = None) -> str:
    """How to create the Secret the recipes mount (from the user's own Docker config)."""
    ns = f" --namespace={namespace_name}" if namespace_name else ""
    return (
        f"kubectl create secret generic {build.secret}{ns} --from-file=config.json=$HOME/.docker/config.json"
    )
