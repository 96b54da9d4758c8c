"""Several registries in one release (``--prefix`` more than once, or a list in invoke.yaml).

The first prefix is the *primary*: the release builds, publishes, signs, verifies and tests there as it
always has. Every other prefix is handled here, in one place, at the same points of the run:

- ``check``: a release is up to date only when every registry holds every version, validly signed,
  with its rolling tags in place;
- ``publish``: the same OCI layout is pushed to each, so each gets the same digests (checked);
- ``copy_signatures``: each digest is signed once, in the primary (one transparency log entry); the
  same Sigstore bundles, and the cosign v2 ``.sig`` image, are attached in every other registry;
- ``verify``: each registry's images are verified where they are;
- ``move_rolling``: only after every registry holds and verifies every image.

A registry that fails is marked failed with its error and the others carry on, so the report lists what
each holds; then the release fails (:meth:`Destinations.raise_if_failed`) before any rolling tag moves,
in any registry. When the primary fails, the report says so for every other registry: what it got
before the run stopped, or "not attempted" (:meth:`Destinations.rows`). The dry run's plan shows each
registry's tags (:meth:`Destinations.plan`). Credentials come per registry from the one Credentials
object (the Docker config's ``auths`` and ``credHelpers``; Docker Hub's from the environment), and
``--insecure`` covers every registry's host (:attr:`Destinations.hosts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pipeline.errors import PipelineError, RegistryError, UsageError
from pipeline.policy import tagplan
from pipeline.progress import Progress
from pipeline.registry.reference import Reference, host_of_prefix, is_loopback_host

if TYPE_CHECKING:
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.layout import Layout
    from pipeline.registry.client import Client
    from pipeline.release.binding import SignatureChecks, Subject
    from pipeline.release.signer import Signing
    from pipeline.release.state import VariantState
    from pipeline.stages.publish import PublishedImage


# What happened in one more registry of a release, in the order it happens (or failed, at any point);
# "not attempted" only in the report of a release that stopped before it got there.
RegistryStatus = Literal[
    "pending",
    "up to date",
    "work to do",
    "published",
    "signed",
    "verified",
    "released",
    "failed",
    "not attempted",
]


@dataclass
class ExtraRegistry:
    """One more registry of the release, and what happened there."""

    prefix: str
    plans: dict[str, tagplan.TagPlan]
    status: RegistryStatus = "pending"
    error: str | None = None
    digests: dict[str, str] = field(default_factory=dict)  # variant -> digest held
    signatures: int = 0  # bundles attached here
    moved: list[str] = field(default_factory=list)
    states: dict[str, VariantState] = field(default_factory=dict)  # what the check found, per variant

    @property
    def registry(self) -> str:
        return Reference.parse(f"{self.prefix}/{tagplan.EXECUTOR_REPOSITORY}").registry

    @property
    def failed(self) -> bool:
        return self.error is not None

    def fail(self, stage: str, exc: PipelineError, progress: Progress) -> None:
        hint = f" ({exc.hint})" if exc.hint else ""  # e.g. what to do about a TLS failure: --insecure
        self.status, self.error = "failed", f"{stage}: {exc.message}{hint}"
        progress.warn(f"{self.prefix}: {stage} failed: {exc.message}{hint}")

    def to_dict(self, stopped: str | None = None) -> dict[str, Any]:
        """This registry for the report; ``stopped`` says where the release stopped, when it failed
        elsewhere (then a registry nothing was pushed to is "not attempted", not "pending")."""
        status, note = self.status, None
        if stopped is not None and not self.failed:
            if status in ("pending", "work to do"):
                status, note = "not attempted", f"not attempted: {stopped}"
            elif status == "up to date":
                note = f"nothing to do here; {stopped}"
            else:  # published, signed or verified: the version tags are here, nothing rolling moved
                note = f"no rolling tag moved: {stopped}"
        return {
            "prefix": self.prefix,
            "status": status,
            "note": note,
            "error": self.error,
            "images": {
                variant: {"repository": self.plans[variant].repository, "digest": digest}
                for variant, digest in self.digests.items()
            },
            "signatures": self.signatures,
            "moved": list(self.moved),
        }


class Destinations:
    """The release's registries beyond the primary; every method handles each and records failures."""

    def __init__(self, prefixes: Sequence[str], version: str, variants: Sequence[str]) -> None:
        self.version = version
        self.stopped_by: list[str] = []  # the registries whose failure failed the release
        self.extra = [
            ExtraRegistry(prefix, tagplan.plan(version, prefix, variants))
            for prefix in (tagplan.normalize_prefix(p) for p in prefixes)
        ]

    def __bool__(self) -> bool:
        return bool(self.extra)

    @property
    def hosts(self) -> list[str]:
        """The API hosts of the other registries (``--insecure`` covers each, as it covers the primary)."""
        return [host_of_prefix(dest.prefix) for dest in self.extra]

    def live(self) -> list[ExtraRegistry]:
        return [dest for dest in self.extra if not dest.failed]

    def hold(self, digests: Mapping[str, str | None]) -> bool:
        """Whether every other registry holds these digests (variant -> digest) under its version tags, as
        the check found; a registry added to a released version does not, so the images go there too."""
        return all(dest.digests.get(v) == d for dest in self.extra for v, d in digests.items())

    def check_signing(self, signing: Signing) -> None:
        """Local signing is for loopback registries only: refuse it when another registry is not one."""
        remote = [dest.prefix for dest in self.extra if not is_loopback_host(dest.registry)]
        if signing.local and remote:
            raise UsageError(
                f"a local Sigstore instance signs this release, but {', '.join(remote)} is not a loopback "
                "registry: its images would carry signatures nobody can verify",
                hint="configure a real Sigstore instance (--trust-config, SIGSTORE_ID_TOKEN and the "
                "certificate identity), or release to loopback registries only",
            )

    def check(self, checks: SignatureChecks, subject: Subject, progress: Progress) -> bool:
        """Whether every other registry is complete (every version signed and attested, rolling tags in
        place)."""
        from pipeline.release.state import inspect_registry

        complete = True
        for dest in self.extra:
            try:
                states = inspect_registry(checks, dest.plans, subject)
            except PipelineError as exc:
                dest.fail("check", exc, progress)
                complete = False
                continue
            dest.states = dict(states)
            dest.digests = {v: s.digest for v, s in states.items() if s.digest is not None}
            done = all(state.complete for state in states.values())
            dest.status = "up to date" if done else "work to do"
            complete = complete and done
        return complete

    def publish(
        self, client: Client, layout: Layout, images: Mapping[str, Descriptor], progress: Progress
    ) -> None:
        """Push the layout's images by digest with their version tags to every other registry."""
        from pipeline.stages import publish

        for dest in self.live():
            try:
                published = publish.publish_images(
                    client,
                    layout,
                    images,
                    dest.prefix,
                    version=self.version,
                    rolling=False,
                    progress=progress,
                )
            except PipelineError as exc:
                dest.fail("publish", exc, progress)
                continue
            dest.digests = {variant: image.digest for variant, image in published.items()}
            dest.status = "published"

    def copy_signatures(
        self, checks: SignatureChecks, primary: Mapping[str, PublishedImage], progress: Progress
    ) -> None:
        """Attach the primary's bundles (signatures and attestations) and `.sig` layers of each index and
        of its platform images (their SBOMs) in every other registry: only those that verify as the
        release's own (:mod:`pipeline.release.copies`). Attaching a bundle already there changes nothing."""
        from pipeline.release.copies import copy_to, verified_with_platforms

        for variant, image in primary.items():
            source = Reference.parse(image.repository)
            found = verified_with_platforms(checks, source, image.digest)
            left = sum(own.left for own in found)
            if left:
                progress.warn(
                    f"{image.repository}@{image.digest}: {left} bundle(s) or .sig layer(s) that are not "
                    f"{checks.policy.identity}'s were left behind"
                )
            for dest in self.live():
                target = Reference.parse(dest.plans[variant].repository)
                try:
                    attached = sum(copy_to(checks.client, own, source, target) for own in found)
                except PipelineError as exc:
                    dest.fail("signatures", exc, progress)
                    continue
                dest.signatures += attached
                progress.info(f"{target.repo_str}@{image.digest}: {attached} bundle(s) attached")
        for dest in self.live():
            dest.status = "signed"

    def verify(self, checks: SignatureChecks, trust_config: str | None, progress: Progress) -> None:
        """Verify each image where it is, in every other registry (under ``trust_config``, the trust config
        that verified it in the primary)."""
        from pipeline.stages import verify_images

        config = checks.trust.config_at(trust_config)
        for dest in self.live():
            for variant, digest in dest.digests.items():
                image = f"{dest.plans[variant].repository}@{digest}"
                try:
                    result = verify_images.verify(
                        Reference.parse(image),
                        client=checks.client,
                        policy=checks.policy,
                        config=config,
                        progress=progress,
                    )
                    if not result.verified:
                        raise RegistryError(f"{image} has no valid signature", hint=result.explain())
                except PipelineError as exc:
                    dest.fail("verify", exc, progress)
                    break
            else:
                dest.status = "verified"

    def raise_if_failed(self, primary: str) -> None:
        """The release fails when any registry did; nothing rolling has moved anywhere yet."""
        failed = [dest for dest in self.extra if dest.failed]
        if not failed:
            return
        self.stopped_by = [dest.prefix for dest in failed]
        held = [primary, *(dest.prefix for dest in self.extra if not dest.failed)]
        raise RegistryError(
            f"{len(failed)} of {len(self.extra) + 1} registries failed: "
            + "; ".join(f"{dest.prefix}: {dest.error}" for dest in failed),
            hint=f"no rolling tag was moved in any registry ({', '.join(held)} hold what was pushed); "
            "run the release again when every registry is reachable: it pushes only what is missing",
        )

    def move_rolling(
        self,
        checks: SignatureChecks,
        layout: Layout | None,
        images: Mapping[str, Descriptor],
        progress: Progress,
    ) -> list[str]:
        """Move the rolling tags in every other registry (after every check passed everywhere); a tag
        holds a version only when the release's identity signed what it names (else VerifyError)."""
        from pipeline.release.binding import rolling_holds
        from pipeline.stages import publish

        moved: list[str] = []
        for dest in self.extra:
            for variant, plan in dest.plans.items():
                if variant not in images:
                    continue
                held = rolling_holds(checks, plan, images[variant].digest)
                decision = publish.move_rolling(
                    checks.client,
                    layout,
                    images[variant],
                    plan,
                    held={tag: version for tag, (_, version) in held.items()},
                    progress=progress,
                )
                dest.moved += [f"{plan.repository}:{tag}" for tag in decision.move]
            dest.status = "released"
            moved += dest.moved
        return moved

    def rows(self, primary: str, status: str, failed_at: str | None = None) -> list[dict[str, Any]]:
        """Every registry of the release, for the report: the primary first. ``failed_at`` is the stage
        a failed release stopped in; each registry then says what it got, or that nothing was tried."""
        first: dict[str, Any] = {"prefix": primary, "status": status, "primary": True}
        stopped = None
        if status == "failed":
            where = f"at {failed_at}" if failed_at else "before it finished"
            if self.stopped_by:
                stopped = f"the release stopped {where} because {', '.join(self.stopped_by)} failed"
                first["note"] = f"no rolling tag moved: {stopped}"
            else:
                stopped = f"{primary} failed {where}"
                first["note"] = f"failed {where}"
        return [first] + [{**dest.to_dict(stopped), "primary": False} for dest in self.extra]

    def plan(self, checked: bool) -> list[dict[str, Any]]:
        """The dry run's plan for every other registry: each repository's tags, what is there and what
        would be set or moved (``checked`` False: the check could not look, so nothing is known there)."""
        out: list[dict[str, Any]] = []
        for dest in self.extra:
            out.append(
                {
                    "prefix": dest.prefix,
                    "status": dest.status if checked else "not checked",
                    "error": dest.error,
                    "up_to_date": bool(dest.states) and all(s.complete for s in dest.states.values()),
                    "repositories": {
                        variant: repository_plan(plan, dest.states.get(variant))
                        for variant, plan in dest.plans.items()
                    },
                }
            )
        return out


def repository_plan(plan: tagplan.TagPlan, state: VariantState | None) -> dict[str, Any]:
    """One repository's tags for the dry run: what each names now (``state``; None: nothing known, as
    for a registry that holds nothing) and what the release would do."""
    if state is not None:
        return state.to_dict()
    return {
        "repository": plan.repository,
        "version_tags": {tag: None for tag in plan.version_tags},
        "rolling": {tag: {"digest": None, "version": None, "action": "move"} for tag in plan.rolling_tags},
        "signed": False,
    }
