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

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record
from pipeline.config import PROJECT_ROOT, Settings
from pipeline.errors import (
    ConfigError,
    ContainerError,
    KanikoError,
    RecordError,
    UsageError,
    VerifyError,
)
from pipeline.progress import Progress, Silent
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services.kaniko import (
    BuildRequest,
    docker_config,
    network_for,
    private_files,
    read_digest,
    run_spec,
)
from pipeline.services.podman import Podman

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.registry.client import Client
    from pipeline.signing.verify import Policy
    from pipeline.stages.verify_images import VerifyResult

DEFAULT_REPOSITORY = "kaniko-nginx"

# Checks the executor's signature before it runs (pipeline.stages.verify_images behind it); raises on failure.
ExecutorVerifier = Callable[[Reference], None]


@dataclass(frozen=True)
class BuiltImage:
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


def build_image(
    podman: Podman,
    request: BuildRequest,
    *,
    credentials: Credentials,
    verify: ExecutorVerifier | None,
    progress: Progress | None = None,
    timeout: float = 1800.0,
) -> BuiltImage:
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
    return BuiltImage(
        image=image,
        destination=str(request.destination),
        digest=digest,
        executor=str(request.executor),
        rootless=podman.rootless,
        seconds=time.monotonic() - started,
    )


def _executor_from_record(settings: Settings) -> Reference:
    from pipeline.stages.publish import recorded_images

    executor = recorded_images(settings.record_file, needed_by="build-image").get("executor")
    if executor is None:
        raise RecordError(
            "the publish record has no executor image",
            hint="run `invoke publish` with the executor variant, or pass --executor REF@sha256:...",
        )
    return Reference.parse(executor)


def _tag_from_record(settings: Settings) -> str:
    from pipeline.stages import fork

    checkout = fork.last_checkout(settings.record_file)
    if checkout is not None:
        return checkout.tag
    raise ConfigError(
        "no tag for the nginx image: no fork stage is recorded",
        hint="pass --tag TAG or --destination REGISTRY/REPO:TAG",
    )


def signature_verifier(
    settings: Settings,
    *,
    certificate_identity: str,
    certificate_oidc_issuer: str,
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
        from pipeline.stages import verify_images

        result = verify_images.run_verify(
            settings,
            image=str(executor),
            certificate_identity=certificate_identity,
            certificate_oidc_issuer=certificate_oidc_issuer,
            progress=progress,
        )
        _refuse_unsigned(executor, result)

    return check


def executor_verifier(
    client: Client, policy: Policy, config: ClientTrustConfig, progress: Progress
) -> ExecutorVerifier:
    """The same check with the release's values: its client, its signer's policy, its trust root."""

    def check(executor: Reference) -> None:
        from pipeline.stages import verify_images

        result = verify_images.verify(
            executor, client=client, policy=policy, config=config, progress=progress
        )
        _refuse_unsigned(executor, result)

    return check


def _refuse_unsigned(executor: Reference, result: VerifyResult) -> None:
    if not result.verified:
        raise VerifyError(
            f"refusing to run the executor {executor}: it has no valid signature",
            hint=result.explain() + "\n(--no-verify skips this check)",
        )


@dataclass(frozen=True)
class ImageInput:
    """What `invoke build-image` is asked for; an empty field takes its default: the executor the publish
    record names, ``docker.io/$DOCKER_HUB_USERNAME/kaniko-nginx:<tag>`` (the fork record's tag), the
    Dockerfile's base, the project directory. ``verify``: check the executor's signature (by the
    identity and issuer) before it runs."""

    executor: str = ""
    destination: str = ""
    tag: str = ""
    base_image: str = ""
    context: str = ""
    dockerfile: str = "Dockerfile"
    verify: bool = True
    certificate_identity: str = ""
    certificate_oidc_issuer: str = ""


def run(settings: Settings, wanted: ImageInput, *, progress: Progress | None = None) -> BuiltImage:
    """`invoke build-image`: read the inputs (options, then the run record), verify, build, push."""
    progress = progress or Silent()
    executor, destination, tag, context = wanted.executor, wanted.destination, wanted.tag, wanted.context
    base_image = wanted.base_image
    given = _checked_executor(executor), _checked(destination), _checked(base_image)  # input first
    if context and not Path(context).is_dir():
        raise UsageError(f"--context {context} is not a directory", hint="pass the build context's directory")
    verifier = (
        signature_verifier(
            settings,
            certificate_identity=wanted.certificate_identity,
            certificate_oidc_issuer=wanted.certificate_oidc_issuer,
            progress=progress,
        )
        if wanted.verify
        else None
    )
    executor_ref = given[0] or _executor_from_record(settings)
    if given[1] is not None:
        dest = given[1].with_tag(tag) if tag else given[1]
    else:
        dest = default_destination(settings.env, tag or _tag_from_record(settings))
    request = BuildRequest(
        executor=executor_ref,
        destination=dest,
        context=Path(context) if context else PROJECT_ROOT,
        dockerfile=wanted.dockerfile,
        registry_mirror=settings.registry_mirror,
        base_image=base_image or None,
    )
    podman = Podman(settings.cache_dir, progress=progress)
    return build_image(
        podman,
        request,
        credentials=Credentials.from_environment(settings.env),
        verify=verifier,
        progress=progress,
    )


def _checked(image: str) -> Reference | None:
    return Reference.parse(image) if image else None


def _checked_executor(image: str) -> Reference | None:
    ref = _checked(image)
    if ref is not None and not ref.digest:
        raise UsageError(
            f"--executor {image} is not pinned by digest", hint="pass the executor as REPOSITORY@sha256:..."
        )
    return ref


def save_record(record_file: Path, result: BuiltImage) -> None:
    """The build-image record: the nginx image it pushed (smoke reads it, :func:`recorded_image`)."""
    record.save(record_file, "build-image", result.to_dict())


def recorded_image(record_file: Path, *, needed_by: str) -> str:
    """The one reader of the build-image record: the nginx image it pushed, ``REPOSITORY@DIGEST``."""
    built = record.stage(record_file, "build-image", needed_by=needed_by)
    image = built.get("image") if isinstance(built, Mapping) else None
    if not image:
        raise RecordError("the build-image record names no image", hint="pass --image REF")
    return str(image)
