"""Invoke tasks: thin wrappers that read config, call one function in `pipeline`, print the result.

Every task that produces something takes --json and then prints exactly one JSON object on stdout;
progress goes to stderr. The project's own errors end a task with a clear message and no traceback
(exit 1 for a failure, 2 for bad input or configuration).

Each task's options are declared once, in its table in :mod:`pipeline.cli.catalog` (name, default, help,
the setting it overrides); the task gets their values as ``o``. Only the light core is imported here: a
task imports what it uses when it runs, so `invoke --list` and every task's first output come quickly.
"""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit

from pipeline import config
from pipeline.cli import catalog, releaseoptions, taskoptions, text
from pipeline.cli.invocation import emit, settings_of, task
from pipeline.progress import Progress


@task(catalog.FORK, taskoptions.ForkOptions)
def fork(c: Context, o: taskoptions.ForkOptions) -> None:
    """Clone or fetch the kaniko fork, check out a release tag and apply fork/patches."""
    from pipeline.stages import fork

    out = fork.run(settings_of(c, o), ref=o.ref, update_pin_file=o.update_pin, progress=Progress())
    emit(out, o.json, text.checked_out)


@task(catalog.BUILD, taskoptions.BuildOptions)
def build(c: Context, o: taskoptions.BuildOptions) -> None:
    """Compile the checked-out fork and assemble executor, debug, slim and warmer into an OCI layout."""
    from pathlib import Path

    from pipeline.source import pinfile
    from pipeline.stages import build, fork

    settings = settings_of(c, o)
    ca_bundle = Path(o.ca_bundle).expanduser() if o.ca_bundle else None
    build.check_input(busybox=o.busybox or None, ca_bundle=ca_bundle, go=settings.go)
    checkout = fork.recorded(settings.record_file, needed_by="invoke build")
    pinned_url = pinfile.load(settings.pin_file).url if settings.pin_file.is_file() else None
    result = build.build(
        checkout,
        build.BuildSpec(
            out=Path(o.out).expanduser().resolve() if o.out else settings.build_layout,
            cache_dir=settings.cache_dir,
            platforms=settings.platforms,
            variants=settings.variants,
            go=settings.go,
            busybox=o.busybox or None,
            registry_mirror=settings.registry_mirror,
            insecure=settings.insecure,
            ca_bundle=ca_bundle,
            pinned_url=pinned_url,
        ),
        progress=Progress(),
    )
    build.save_record(settings.record_file, result)
    emit(result.to_dict(), o.json, build.summary)


@task(catalog.SETUP, taskoptions.SetupOptions)
def setup(c: Context, o: taskoptions.SetupOptions) -> None:
    """Install the system packages the pipeline needs (apt-get; root or sudo), then run the doctor's checks."""
    import os

    from pipeline import system
    from pipeline.services import doctor

    target = doctor.target_user(o.user or None)  # the input first: then apt-get
    installed = system.install(progress=Progress())
    fixing = os.geteuid() == 0 and target.pw_uid != 0
    result = doctor.fix(target) if fixing else doctor.diagnose(target)
    emit(
        {"installed": installed, **result.to_dict()},
        o.json,
        lambda r: (
            ("installed: " + " ".join(installed) if installed else "nothing to install")
            + "\n"
            + result.text()
        ),
    )
    if not result.ok:
        raise Exit(code=1)


@task(catalog.DOCTOR, taskoptions.DoctorOptions)
def doctor(c: Context, o: taskoptions.DoctorOptions) -> None:
    """Check what rootless podman and mmdebstrap need (subuid/subgid, newuidmap, network, userns, storage)."""
    from pipeline.services import doctor

    result = doctor.diagnose(doctor.target_user(o.user or None))
    emit(result.to_dict(), o.json, lambda r: result.text())
    if not result.ok:
        raise Exit(code=1)


@task(catalog.SIGN, taskoptions.SignOptions)
def sign(c: Context, o: taskoptions.SignOptions) -> None:
    """Sign the published images keyless with Sigstore and attach the signatures in the registry."""
    from pipeline.stages import sign

    settings = settings_of(c, o)
    result = sign.run_sign(
        settings,
        images=o.image or (),
        identity_token=o.identity_token or None,
        per_platform=o.per_platform,
        sig_tag=o.sig_tag,
        local=o.local_sigstore,
        progress=Progress(),
    )
    if not o.image:
        sign.save_record(settings.record_file, result)
    emit(result, o.json, text.signed)


@task(catalog.VERIFY, taskoptions.VerifyOptions)
def verify(c: Context, o: taskoptions.VerifyOptions) -> None:
    """Verify an image's attached Sigstore signatures (or --type attestations) against an identity and an OIDC issuer."""
    from pipeline.stages import verify_images

    if o.type and o.type != "signature":
        from pipeline.stages import attest

        found = attest.run_verify(
            settings_of(c, o),
            image=o.image,
            kind=o.type,
            certificate_identity=o.certificate_identity,
            certificate_oidc_issuer=o.certificate_oidc_issuer,
            progress=Progress(),
        )
        emit(found.to_dict(), o.json, lambda r: attest.describe(found))
        if not found.verified:
            raise Exit(code=1)
        return
    result = verify_images.run_verify(
        settings_of(c, o),
        image=o.image,
        certificate_identity=o.certificate_identity,
        certificate_oidc_issuer=o.certificate_oidc_issuer,
        progress=Progress(),
    )
    emit(result.to_dict(), o.json, lambda r: result.explain())
    if not result.verified:
        raise Exit(code=1)


@task(catalog.REPRODUCE, taskoptions.ReproduceOptions)
def reproduce(c: Context, o: taskoptions.ReproduceOptions) -> None:
    """Rebuild a published image from its verified SLSA provenance; exit 0 'reproduced', 1 with what differs."""
    from pipeline.stages import reproduce

    result = reproduce.run(
        settings_of(c, o),
        image=o.image,
        certificate_identity=o.certificate_identity,
        certificate_oidc_issuer=o.certificate_oidc_issuer,
        busybox=o.busybox or None,
        progress=Progress(),
    )
    emit(result.to_dict(), o.json, lambda r: result.text())
    if not result.reproduced:
        raise Exit(code=1)


@task(catalog.SMOKE, taskoptions.SmokeOptions)
def smoke(c: Context, o: taskoptions.SmokeOptions) -> None:
    """Run the nginx image in podman (no capabilities, no-new-privileges) and check it; exit 1 on a failed check."""
    from pipeline.stages import smoke

    result = smoke.run(settings_of(c, o), image=o.image, wait=float(o.wait), progress=Progress())
    emit(result.to_dict(), o.json, text.smoke)
    result.raise_for_failure()


@task(catalog.BUILD_IMAGE, taskoptions.BuildImageOptions, name="build-image")
def build_image(c: Context, o: taskoptions.BuildImageOptions) -> None:
    """Build and push the nginx test image with the kaniko executor, run in podman as the kaniko README says."""
    from pipeline.stages import build_image

    settings = settings_of(c, o)
    result = build_image.run(
        settings,
        build_image.ImageInput(
            executor=o.executor,
            destination=o.destination,
            tag=o.tag,
            base_image=o.base_image,
            context=o.context,
            dockerfile=o.dockerfile,
            verify=not o.no_verify,
            certificate_identity=o.certificate_identity,
            certificate_oidc_issuer=o.certificate_oidc_issuer,
        ),
        progress=Progress(),
    )
    build_image.save_record(settings.record_file, result)
    emit(result.to_dict(), o.json, lambda r: f"kaniko built and pushed {r['image']} in {r['seconds']} s")


@task(catalog.CONFORMANCE, taskoptions.ConformanceOptions)
def conformance(c: Context, o: taskoptions.ConformanceOptions) -> None:
    """Prove the executor images on real builds (the conformance suite), each compared with buildah's."""
    from pipeline.stages.conformance import stage
    from pipeline.stages.conformance.upstream import BaseChoice

    result = stage.run(
        settings_of(c, o),
        executor=o.executor,
        variant_names=[v.strip() for v in o.variants.split(",") if v.strip()],
        cases_dir=o.cases,
        suite_names=list(o.suite or []),
        quick=o.quick,
        reference=o.reference,
        progress=Progress(),
        base_choice=BaseChoice(o.bases, o.upstream),
    )
    if o.write_readme:
        from pipeline.stages.conformance import readme

        readme.write(result)
    emit(result.to_dict(), o.json, lambda r: result.text())
    if not result.ok:
        raise Exit(f"error: conformance failed: {result.summary()}", code=1)


@task(catalog.NGINX_BASE, taskoptions.NginxBaseOptions, name="nginx-base")
def nginx_base(c: Context, o: taskoptions.NginxBaseOptions) -> None:
    """Make (once, cached) the offline nginx base image from Debian packages; optionally push it."""
    from pipeline.services import nginxbase

    settings = settings_of(c, o)
    result = nginxbase.run(settings, push_to=o.push_to, progress=Progress())
    emit(result, o.json, text.nginx_base)


@task(catalog.TEST, taskoptions.SuiteOptions)
def test(c: Context, o: taskoptions.SuiteOptions) -> None:
    """Run the unit and integration tests (the e2e tests run with `invoke test-e2e`)."""
    from pipeline.cli import checks

    argv = checks.pytest_argv(unit=o.unit, quick=o.quick, k=o.k, workers=o.workers)
    result = c.run(checks.shell(argv), pty=False, warn=True)
    if result is None or result.exited != 0:
        raise Exit(code=result.exited if result is not None else 1)


@task(catalog.LINT, taskoptions.LintOptions)
def lint(c: Context, o: taskoptions.LintOptions) -> None:
    """Check the code: ruff (lint and format), mypy strict (pipeline, tasks.py, tests), the import contracts."""
    from pipeline.cli import checks

    failed = [name for name, argv in checks.LINTERS if not c.run(checks.shell(argv), pty=False, warn=True).ok]
    if failed:
        raise Exit(f"error: lint failed: {', '.join(failed)}", code=1)


@task(catalog.PUBLISH, taskoptions.PublishOptions)
def publish(c: Context, o: taskoptions.PublishOptions) -> None:
    """Push the built images (blobs, manifests, index, then tags) to the registry under the prefix."""
    from pathlib import Path

    from pipeline.stages import publish

    settings = settings_of(c, o)
    result = publish.run(
        settings,
        layout_dir=Path(o.layout).expanduser() if o.layout else None,
        version=o.version or None,
        rolling=not o.no_rolling,
        replace_version_tags=o.replace_version_tags,
        platform_record=releaseoptions.platform_record(o),
        progress=Progress(),
    )
    emit(result, o.json, text.published)


@task(catalog.REGISTRY_UP, taskoptions.RegistryUpOptions)
def registry_up(c: Context, o: taskoptions.RegistryUpOptions) -> None:
    """Start the embedded local registry (or report the one already running)."""
    from pipeline.services import distribution

    settings = settings_of(c, o)
    state = distribution.up(
        settings.cache_dir, port=o.port or distribution.EMBEDDED_PORT, progress=Progress()
    )
    emit(
        state.to_dict(),
        o.json,
        lambda r: f"local registry at {r['url']} (pid {r['pid']}, storage {r['root']})",
    )


@task(catalog.REGISTRY_DOWN, taskoptions.RegistryDownOptions)
def registry_down(c: Context, o: taskoptions.RegistryDownOptions) -> None:
    """Stop the embedded local registry."""
    from pipeline.services import distribution

    settings = settings_of(c, o)
    stopped = distribution.down(settings.cache_dir, progress=Progress())
    emit(
        {"stopped": stopped},
        o.json,
        lambda r: "local registry stopped" if r["stopped"] else "no local registry was running",
    )


@task(catalog.RENDER, taskoptions.RenderOptions)
def render(c: Context, o: taskoptions.RenderOptions) -> None:
    """Write a deploy recipe for the published executor: Kubernetes Pod or Job, GitLab runner or CI job."""
    from pipeline.stages import render

    result = render.run(
        settings_of(c, o),
        o.target,
        executor=o.executor,
        variant=o.variant,
        destination=o.destination,
        context=o.context,
        name=o.name,
        namespace=o.namespace,
        tar_path=o.tar_path,
        out=o.out,
    )
    emit(result, o.json, lambda r: f"wrote {r['path']}" if r["path"] else r["text"])


@task(catalog.RELEASE, taskoptions.ReleaseOptions)
def release(c: Context, o: taskoptions.ReleaseOptions) -> None:
    """Release: fork, build, publish, sign, verify, build-image, conformance, smoke, then the rolling tags."""
    from pipeline import release

    settings = settings_of(c, o)
    report = release.run(
        settings,
        releaseoptions.release_options(o),
        progress=Progress(),
    )
    emit(report.to_dict(), o.json, lambda r: text.release(report))


@task(catalog.TEST_E2E, taskoptions.EndToEndOptions, name="test-e2e")
def test_e2e(c: Context, o: taskoptions.EndToEndOptions) -> None:
    """The whole release on one machine: fresh local registry, local Sigstore, real fork, kaniko, smoke."""
    from pipeline import release

    settings = settings_of(c, o)
    result = release.e2e(
        settings,
        keep=o.keep,
        platforms=config.parse_platforms(o.platforms, label=config.option_label("platforms", True))
        if o.platforms
        else None,
        options=releaseoptions.e2e_options(o),
        progress=Progress(),
    )
    emit(result.to_dict(), o.json, text.e2e)


ns = Collection(
    fork,
    build,
    setup,
    doctor,
    test,
    lint,
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
