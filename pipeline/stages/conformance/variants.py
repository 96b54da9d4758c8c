"""What each variant proves beyond building the cases:

- debug: a GitLab-style job script through ``/busybox/sh`` (write the Docker config, run the executor,
  push, print the digest), as a GitLab CI job with ``entrypoint: [""]`` runs it;
- warmer: fills a cache directory with a base image; the executor then builds a case with
  ``--cache-dir`` and kaniko's output shows the base came from that cache;
- the three credential helpers in the image run (version or help).

All under the kaniko README's profile.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.services.podman import Mount
from pipeline.stages.conformance.builders import CACHE_DIR, Kaniko
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import CaseResult
from pipeline.stages.conformance.runner import Context

# Each helper's own way to say what it is, and a word its answer must hold.
HELPERS = {
    "docker-credential-gcr": ("version", "Docker credential helper"),
    "docker-credential-ecr-login": ("-v", "amazon-ecr-credential-helper"),
    "docker-credential-acr-env": ("--help", "Azure Container Registry"),
}
LOCAL_CACHE_LINE = re.compile(r"Found sha256:[0-9a-f]{64} in local cache")
_DIGEST = re.compile(r"^DIGEST=(sha256:[0-9a-f]{64})$", re.M)


def debug_script(registry_host: str, destination: str) -> str:
    """The job script: the shape of the kaniko README's GitLab CI example."""
    return f"""set -eu
mkdir -p /kaniko/.docker
echo '{{"auths":{{}}}}' > /kaniko/.docker/config.json
/kaniko/executor version
/kaniko/executor --context "dir:///workspace" --dockerfile /workspace/Dockerfile \\
  --destination "{destination}" --insecure --insecure-registry "{registry_host}" \\
  --registry-mirror "{registry_host}" --insecure-pull --digest-file /kaniko/job-digest
echo "DIGEST=$(cat /kaniko/job-digest)"
"""


def _result(
    name: str, variant: str, started: float, failure: str, lines: list[str] | None = None
) -> CaseResult:
    seconds = time.monotonic() - started
    if not failure:
        return CaseResult(name, variant, "passed", seconds)
    return CaseResult(name, variant, "failed", seconds, reason="\n".join([failure, *(lines or [])]))


def prove_debug(debug: Kaniko, case: Case, registry_host: str) -> CaseResult:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.registry.reference import Reference

    started = time.monotonic()
    destination = f"{registry_host}/conformance/debug-job:ci"
    run = debug.command(
        ["/busybox/sh", "-c", debug_script(registry_host, destination)],
        mounts=[Mount(case.directory.resolve(), "/workspace", read_only=True)],
    )
    if run.returncode != 0:
        return _result(
            "gitlab-script", "debug", started, f"the job script failed (exit {run.returncode})", run.tail()
        )
    found = _DIGEST.search(run.log)
    if found is None:
        return _result("gitlab-script", "debug", started, "the job script printed no digest", run.tail())
    with Client(credentials=Credentials.anonymous()) as client:
        desc = client.head_manifest(Reference.parse(destination))
    if desc is None or desc.digest != found.group(1):
        return _result(
            "gitlab-script", "debug", started, f"{destination} does not hold the digest the job printed"
        )
    return _result("gitlab-script", "debug", started, "")


def prove_warmer(
    warmer: Kaniko, executor: Kaniko, case: Case, registry_host: str, workdir: Path
) -> CaseResult:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="warm-", dir=workdir) as tmp:
        cache = Path(tmp)
        warmed = warmer.command(
            [
                "/kaniko/warmer",
                f"--cache-dir={CACHE_DIR}",
                "--image=docker.io/library/busybox:latest",
                f"--registry-mirror={warmer.mirror}",  # the stand-ins' registry, or the pull-through cache
                "--insecure-pull",
                f"--insecure-registry={warmer.mirror}",
                *[arg for arg in warmer.mirror_args() if not arg.startswith("--registry-map")],
            ],
            mounts=[Mount(cache, CACHE_DIR, read_only=False)],
        )
        if warmed.returncode != 0:
            return _result(
                "warm-cache",
                "warmer",
                started,
                f"the warmer failed (exit {warmed.returncode})",
                warmed.tail(),
            )
        if not any(cache.iterdir()):
            return _result(
                "warm-cache", "warmer", started, "the warmer exited 0 but wrote nothing to the cache"
            )
        repo = f"{registry_host}/conformance/warm-{case.name}"
        run = executor.build(
            case,
            workdir / f"warm-{case.name}.tar",
            extra=["--cache=true", f"--cache-repo={repo}"],
            cache_dir=cache,
        )
        if run.tarball is not None:
            run.tarball.unlink(missing_ok=True)
        if run.returncode != 0:
            return _result(
                "warm-cache",
                "warmer",
                started,
                f"the executor failed with --cache-dir (exit {run.returncode})",
                run.tail(),
            )
        if not LOCAL_CACHE_LINE.search(run.log):
            return _result(
                "warm-cache",
                "warmer",
                started,
                "the executor did not take the base from the warmed cache",
                run.tail(),
            )
    return _result("warm-cache", "warmer", started, "")


def prove_helpers(images: Mapping[str, Kaniko]) -> list[CaseResult]:
    """Each credential helper runs from each image that ships them (slim ships none)."""
    results = []
    for variant, image in images.items():
        if variant == "slim":
            continue
        started = time.monotonic()
        failures: list[str] = []
        for helper, (flag, word) in HELPERS.items():
            run = image.command([f"/kaniko/{helper}", flag])
            if run.returncode != 0 or word not in run.log:
                failures.append(f"/kaniko/{helper} {flag} exited {run.returncode}: {' '.join(run.tail(2))}")
        results.append(_result("credential-helpers", variant, started, "; ".join(failures)))
    return results


def proof_cases(cases: Sequence[Case]) -> list[Case]:
    """The cases the proofs build (debug's job script, the warmer's cached build)."""
    found = [
        _simple_case(cases),
        next((c for c in cases if c.name == "run-forms"), None) or _busybox_case(cases),
    ]
    return list({case.name: case for case in found if case is not None}.values())


def planned(cases: Sequence[Case], variants: Sequence[str]) -> list[tuple[str, str]]:
    """The (proof, variant) pairs :func:`prove_all` gives for ``variants``, in its order."""
    out = []
    if "debug" in variants and _simple_case(cases) is not None:
        out.append(("gitlab-script", "debug"))
    if "warmer" in variants:
        out.append(("warm-cache", "warmer"))
    return out + [("credential-helpers", variant) for variant in variants if variant != "slim"]


def prove_all(
    ctx: Context, cases: Sequence[Case], builders: Mapping[str, Kaniko], host: str
) -> list[CaseResult]:
    """What each variant under test proves beyond the cases (see the module's docstring); the pairs
    :func:`planned` names."""
    out: list[CaseResult] = []
    simple = _simple_case(cases)
    if "debug" in builders and simple is not None:
        ctx.progress.step("debug: a GitLab-style job script through /busybox/sh")
        out.append(prove_debug(builders["debug"], simple, host))
    if "warmer" in builders:
        executor = builders.get("executor") or builders.get("debug")
        warm_case = next((c for c in cases if c.name == "run-forms"), None) or _busybox_case(cases)
        if executor is None or warm_case is None:
            out.append(
                CaseResult(
                    "warm-cache",
                    "warmer",
                    "skipped",
                    reason="needs the executor variant and a case FROM busybox",
                )
            )
        else:
            ctx.progress.step("warmer: fill a cache directory, then build with --cache-dir")
            out.append(prove_warmer(builders["warmer"], executor, warm_case, host, ctx.workdir))
    if builders:
        ctx.progress.step("credential helpers: run each from the images that ship them")
        out += prove_helpers(builders)
    return out


def _simple_case(cases: Sequence[Case]) -> Case | None:
    return next((c for c in cases if c.name == "scratch-copy"), None) or next(
        (c for c in cases if c.kind == "build" and not c.skip and not c.build_args and not c.target), None
    )


def _busybox_case(cases: Sequence[Case]) -> Case | None:
    for case in cases:
        text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace")
        if case.kind == "build" and not case.skip and "FROM busybox" in text:
            return case
    return None
