"""The kaniko executor as a podman container: the kaniko README's profile, its arguments, the Docker
config it reads, and the digest it writes.

The executor runs by digest with the README's profile, exactly::

    --cap-drop=ALL --cap-add=CHOWN,FOWNER,DAC_OVERRIDE --security-opt=no-new-privileges

The build context is mounted read-only at /workspace. Registry credentials reach kaniko only as a
read-only ``/kaniko/.docker/config.json``, a 0600 file in a private temporary directory that is
deleted afterwards: never in argv or the environment. kaniko writes the pushed digest to
``--digest-file`` in a mounted temporary directory, and that file, not a guess, is what is reported.

Host networking only when the executor must reach a loopback registry (see :func:`network_for`).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import scratch
from pipeline.errors import (
    KanikoError,
    UsageError,
)
from pipeline.registry.credentials import DOCKER_HUB_KEY, Credential, Credentials
from pipeline.registry.reference import Reference, is_loopback_host, registry_of
from pipeline.services.podman import Mount, RunSpec

KANIKO_CAPS = ("CHOWN", "FOWNER", "DAC_OVERRIDE")
WORKSPACE = "/workspace"
DOCKER_CONFIG_FILE = "/kaniko/.docker/config.json"
OUTPUT_DIR = "/kaniko/pipeline-output"
DIGEST_FILE = f"{OUTPUT_DIR}/digest"
BASE_IMAGE_ARG = "BASE_IMAGE"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class BuildRequest:
    """What to build, with which executor, and where to push it."""

    executor: Reference
    destination: Reference
    context: Path
    dockerfile: str = "Dockerfile"  # relative to the context
    registry_mirror: str | None = None  # host[:port][/path]: kaniko's mirror for docker.io
    base_image: str | None = None  # passed as --build-arg BASE_IMAGE=...
    build_args: Mapping[str, str] = field(default_factory=dict)
    extra_args: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.executor.digest:
            raise UsageError(
                f"the executor {self.executor} is not named by digest",
                hint="pass --executor REGISTRY/REPO@sha256:... (the digest `invoke publish` reported)",
            )
        if not self.destination.tag and not self.destination.digest:
            raise UsageError(
                f"the destination {self.destination} has no tag", hint="add :TAG to --destination"
            )
        if Path(self.dockerfile).is_absolute() or ".." in Path(self.dockerfile).parts:
            raise UsageError(
                f"the Dockerfile {self.dockerfile!r} must be a path inside the context",
                hint="pass a path relative to the context directory",
            )
        if not (self.context / self.dockerfile).is_file():
            raise UsageError(f"there is no {self.dockerfile} in the build context {self.context}")
        if BASE_IMAGE_ARG in self.build_args and self.base_image:
            raise UsageError("BASE_IMAGE is given twice: as --base-image and as a build argument")

    @property
    def mirror_host(self) -> str | None:
        if not self.registry_mirror:
            return None
        text = self.registry_mirror.split("://", 1)[-1]
        return text.split("/", 1)[0] or None

    @property
    def registries(self) -> list[str]:
        """Every registry this build talks to: the destination, the mirror, the base image's."""
        hosts = [self.destination.registry, self.mirror_host, registry_of(self.base_image or "")]
        return list(dict.fromkeys(host for host in hosts if host))


def loopback_hosts(request: BuildRequest) -> list[str]:
    """The registries of this build that are on loopback (plain HTTP is allowed for these only)."""
    return [host for host in request.registries if is_loopback_host(host)]


def network_for(request: BuildRequest) -> tuple[str | None, str]:
    """podman's network for the executor, and the log line that says why."""
    hosts = loopback_hosts(request)
    if not hosts:
        return None, "kaniko runs on podman's default network (no registry of this build is on loopback)"
    return "host", (
        f"kaniko runs with --network=host to reach the loopback registry {', '.join(hosts)}: RUN steps of "
        "the Dockerfile can reach every service on this machine's 127.0.0.1"
    )


def executor_args(request: BuildRequest) -> list[str]:
    """The executor's arguments: no secret is ever among them."""
    args = [
        f"--dockerfile={WORKSPACE}/{Path(request.dockerfile).as_posix()}",
        f"--context=dir://{WORKSPACE}",
        f"--destination={request.destination}",
        f"--digest-file={DIGEST_FILE}",
    ]
    if request.registry_mirror:
        args.append(f"--registry-mirror={request.registry_mirror}")
        if request.mirror_host and is_loopback_host(request.mirror_host):
            args.append("--insecure-pull")
    if request.destination.is_loopback:
        args.append("--insecure")
    args += [f"--insecure-registry={host}" for host in loopback_hosts(request)]
    if request.base_image:
        args.append(f"--build-arg={BASE_IMAGE_ARG}={request.base_image}")
    args += [f"--build-arg={key}={value}" for key, value in sorted(request.build_args.items())]
    args += list(request.extra_args)
    return args


def run_spec(request: BuildRequest, config_file: Path, output_dir: Path, name: str) -> RunSpec:
    """podman's view of the run: the README's security profile, read-only context and credentials."""
    return RunSpec(
        image=str(request.executor),
        args=executor_args(request),
        name=name,
        remove=True,
        cap_drop=("ALL",),
        cap_add=KANIKO_CAPS,
        no_new_privileges=True,
        mounts=(
            Mount(request.context.resolve(), WORKSPACE, read_only=True),
            Mount(config_file, DOCKER_CONFIG_FILE, read_only=True),
            Mount(output_dir, OUTPUT_DIR, read_only=False),
        ),
        network=network_for(request)[0],
    )


def docker_config(credentials: Credentials, hosts: Sequence[str]) -> dict[str, Any]:
    """A Docker config.json with an ``auths`` entry for each host that has credentials."""
    auths: dict[str, dict[str, str]] = {}
    for host in dict.fromkeys(hosts):
        cred = credentials.lookup(host)
        if cred is None:
            continue
        key = DOCKER_HUB_KEY if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host
        auths[key] = _auth_entry(cred)
    return {"auths": auths}


def _auth_entry(cred: Credential) -> dict[str, str]:
    if cred.identity_token:
        entry = {"identitytoken": cred.identity_token}
        if cred.username:
            entry["username"] = cred.username
        return entry
    pair = f"{cred.username}:{cred.password}".encode()
    return {"auth": base64.b64encode(pair).decode("ascii")}


@contextmanager
def private_files(config: Mapping[str, Any]) -> Iterator[tuple[Path, Path]]:
    """A 0700 temporary directory with the 0600 config.json and an output directory; deleted after."""
    with scratch.private_directory("kaniko-run-") as root:
        config_file = root / "config.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        output = root / "output"
        output.mkdir(mode=0o700)
        yield config_file, output


def read_digest(output_dir: Path) -> str:
    path = output_dir / Path(DIGEST_FILE).name
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise KanikoError(
            "kaniko finished but wrote no digest file, so the pushed image is unknown",
            hint="check kaniko's log above; the executor must support --digest-file",
        ) from None
    if not _DIGEST.fullmatch(text):
        raise KanikoError(f"kaniko's digest file holds {text[:80]!r}, not a sha256 digest")
    return text
