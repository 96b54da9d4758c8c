"""The kaniko stage: run the published executor in podman on the top-level Dockerfile and push the image.

The executor runs by digest with the kaniko README's profile, exactly::

    --cap-drop=ALL --cap-add=CHOWN,FOWNER,DAC_OVERRIDE --security-opt=no-new-privileges

rootless when the pipeline runs as an ordinary user. The build context is mounted read-only at
/workspace. Registry credentials reach kaniko only as a read-only ``/kaniko/.docker/config.json``, a
0600 file in a private temporary directory that is deleted afterwards: never in argv or the
environment. kaniko writes the pushed digest to ``--digest-file`` in a mounted temporary directory, and
that file, not a guess, is what the stage reports. kaniko's own output streams to the user's stderr.

Host networking is a trade-off: with ``--network=host`` every RUN step of the user's Dockerfile can
reach every service on the host's 127.0.0.1. So the executor gets it only when it must reach a
loopback registry (the destination, the mirror, or the base image's registry: 127.0.0.0/8, ::1,
``localhost``), and the log says so; otherwise it runs on podman's default network. Plain HTTP is
allowed for loopback registries only (``--insecure-pull``, ``--insecure-registry``, ``--insecure``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import record
from pipeline.config import PROJECT_ROOT, Settings
from pipeline.container import Mount, Podman, RunSpec
from pipeline.errors import (
    ConfigError,
    ContainerError,
    KanikoError,
    RecordError,
    UsageError,
    VerifyError,
)
from pipeline.progress import Progress, Silent
from pipeline.registry.credentials import DOCKER_HUB_KEY, Credential, Credentials
from pipeline.registry.reference import Reference, is_loopback_host, registry_of

KANIKO_CAPS = ("CHOWN", "FOWNER", "DAC_OVERRIDE")
WORKSPACE = "/workspace"
DOCKER_CONFIG_FILE = "/kaniko/.docker/config.json"
OUTPUT_DIR = "/kaniko/pipeline-output"
DIGEST_FILE = f"{OUTPUT_DIR}/digest"
DEFAULT_REPOSITORY = "kaniko-nginx"
BASE_IMAGE_ARG = "BASE_IMAGE"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)

# Checks the executor's signature before it runs (pipeline.sign.verify behind it); raises on failure.
ExecutorVerifier = Callable[[Reference], None]


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


@dataclass(frozen=True)
class BuildResult:
    image: str  # destination@digest
    destination: str
    digest: str
    executor: str
    rootless: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "destination": self.destination,
            "digest": self.digest,
            "executor": self.executor,
            "rootless": self.rootless,
            "seconds": round(self.seconds, 1),
        }


def default_destination(env: Mapping[str, str], tag: str) -> Reference:
    """``docker.io/$DOCKER_HUB_USERNAME/kaniko-nginx:<tag>``."""
    user = env.get("DOCKER_HUB_USERNAME", "").strip()
    if not user:
        raise ConfigError(
            "no destination for the nginx image: DOCKER_HUB_USERNAME is not set",
            hint="set DOCKER_HUB_USERNAME (and DOCKER_HUB_KANIKO_PAT), or pass --destination REGISTRY/REPO:TAG",
        )
    return Reference.parse(f"docker.io/{user}/{DEFAULT_REPOSITORY}:{tag}")


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
    root = Path(tempfile.mkdtemp(prefix="kaniko-run-"))
    try:
        os.chmod(root, 0o700)
        config_file = root / "config.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        output = root / "output"
        output.mkdir(mode=0o700)
        yield config_file, output
    finally:
        shutil.rmtree(root, ignore_errors=True)


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


def build_image(
    podman: Podman,
    request: BuildRequest,
    *,
    credentials: Credentials,
    verify: ExecutorVerifier | None,
    progress: Progress | None = None,
    timeout: float = 1800.0,
) -> BuildResult:
    """Verify the executor (unless ``verify`` is None: --no-verify), run it, return the pushed digest."""
    progress = progress or Silent()
    started = time.monotonic()
    if verify is not None:
        progress.step(f"verifying the executor's signature: {request.executor}")
        verify(request.executor)
    else:
        progress.warn(f"not verifying the executor's signature (--no-verify): {request.executor}")

    progress.step(f"pulling the executor {request.executor} ({podman.describe()})")
    config = docker_config(credentials, request.registries)
    name = f"kp-kaniko-{secrets.token_hex(4)}"
    with (
        podman.borrowed(  # with the credentials of the executor's registry, if it has any
            str(request.executor),
            tls_verify=not request.executor.is_loopback,
            auth=docker_config(credentials, [request.executor.registry]),
        ),
        private_files(config) as (config_file, output_dir),
    ):
        spec = run_spec(request, config_file, output_dir, name)
        network, why = network_for(request)
        (progress.warn if network == "host" else progress.info)(why)
        progress.step(f"kaniko: building {request.context / request.dockerfile} -> {request.destination}")
        try:
            result = podman.command(spec.argv(), what="kaniko", timeout=timeout, stream=True, check=False)
        except ContainerError as exc:
            podman.rm(name)
            raise KanikoError(f"kaniko did not finish: {exc.message}", hint=exc.hint) from exc
        if result.returncode != 0:
            podman.rm(name)
            hint = "kaniko's log is above"
            if result.returncode >= 125:
                hint += "; exit status 125-127 means podman could not start the container"
            raise KanikoError(
                f"kaniko failed (exit status {result.returncode}) building {request.destination}", hint=hint
            )
        digest = read_digest(output_dir)
    destination = Reference(
        request.destination.registry, request.destination.repository, request.destination.tag
    )
    image = f"{destination.repo_str}@{digest}"
    progress.step(f"kaniko pushed {image}")
    return BuildResult(
        image=image,
        destination=str(request.destination),
        digest=digest,
        executor=str(request.executor),
        rootless=podman.rootless,
        seconds=time.monotonic() - started,
    )


def _executor_from_record(settings: Settings) -> Reference:
    published = record.stage(settings.record_file, "publish", needed_by="build-image")
    images = published.get("images")
    entry = images.get("executor") if isinstance(images, Mapping) else None
    if not isinstance(entry, Mapping) or "repository" not in entry or "digest" not in entry:
        raise RecordError(
            "the publish record has no executor image",
            hint="run `invoke publish` with the executor variant, or pass --executor REF@sha256:...",
        )
    return Reference.parse(f"{entry['repository']}@{entry['digest']}")


def _tag_from_record(settings: Settings) -> str:
    fork = record.read(settings.record_file).get("fork")
    if isinstance(fork, Mapping) and fork.get("tag"):
        return str(fork["tag"])
    raise ConfigError(
        "no tag for the nginx image: no fork stage is recorded",
        hint="pass --tag TAG or --destination REGISTRY/REPO:TAG",
    )


def signature_verifier(
    settings: Settings,
    *,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    trust_config: str | None,
    progress: Progress,
) -> ExecutorVerifier:
    """The check build-image runs before the executor: `invoke verify`'s, by the executor's digest."""
    if not certificate_identity or not certificate_oidc_issuer:
        raise UsageError(
            "build-image verifies the executor's signature first and needs the signer's identity",
            hint="pass --certificate-identity and --certificate-oidc-issuer (as for `invoke verify`), "
            "or --no-verify to run an unverified executor",
        )

    def check(executor: Reference) -> None:
        from pipeline import sign

        result = sign.run_verify(
            settings,
            image=str(executor),
            certificate_identity=certificate_identity,
            certificate_oidc_issuer=certificate_oidc_issuer,
            trust_config=trust_config,
            progress=progress,
        )
        if not result.verified:
            raise VerifyError(
                f"refusing to run the executor {executor}: it has no valid signature",
                hint=result.explain() + "\n(--no-verify skips this check)",
            )

    return check


def run(
    settings: Settings,
    *,
    executor: str = "",
    destination: str = "",
    tag: str = "",
    registry_mirror: str = "",
    base_image: str = "",
    context: str = "",
    dockerfile: str = "Dockerfile",
    verify: bool = True,
    certificate_identity: str = "",
    certificate_oidc_issuer: str = "",
    trust_config: str = "",
    progress: Progress | None = None,
) -> BuildResult:
    """`invoke build-image`: read the inputs (options, then the run record), verify, build, push."""
    progress = progress or Silent()
    executor_ref = Reference.parse(executor) if executor else _executor_from_record(settings)
    if destination:
        dest = Reference.parse(destination)
        if tag:
            dest = dest.with_tag(tag)
    else:
        dest = default_destination(settings.env, tag or _tag_from_record(settings))
    request = BuildRequest(
        executor=executor_ref,
        destination=dest,
        context=Path(context) if context else PROJECT_ROOT,
        dockerfile=dockerfile,
        registry_mirror=registry_mirror or settings.registry_mirror,
        base_image=base_image or None,
    )
    verifier = (
        signature_verifier(
            settings,
            certificate_identity=certificate_identity,
            certificate_oidc_issuer=certificate_oidc_issuer,
            trust_config=trust_config or None,
            progress=progress,
        )
        if verify
        else None
    )
    podman = Podman(settings.cache_dir, progress=progress)
    return build_image(
        podman,
        request,
        credentials=Credentials.from_environment(settings.env),
        verify=verifier,
        progress=progress,
    )
