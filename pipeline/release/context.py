"""What every stage of one release shares: its options, the report and the stage timer, and the run
context that ``resolve`` and ``check`` fix (the release, where it goes, who signs, the client, the signer).

Within a release the stages hand each other plain values (:class:`Made`, the smoke result, ...) and the
one :class:`~pipeline.signing.trust.Trust`; the context holds only what does not change once the run has
started. No stage reads the run record: it is written for a task that runs alone later.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.progress import Progress
from pipeline.release.report import Report, Stage

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.layout import Layout
    from pipeline.policy.tagplan import TagPlan
    from pipeline.registry.client import Client
    from pipeline.release.binding import Subject
    from pipeline.release.registries import Destinations
    from pipeline.release.resolution import Resolved
    from pipeline.release.signer import Signer, Signing
    from pipeline.source.checkout import Checkout
    from pipeline.stages.conformance.result import ConformanceMode
    from pipeline.stages.conformance.shards import Shard
    from pipeline.stages.publish import PublishedImage

# Called after each stage that completed (a test seam: raising there is a run killed between stages).
StageHook = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """The release's options, named as the stages name them (the rest come from Settings)."""

    ref: str = ""
    identity_token: str | None = field(default=None, repr=False)
    certificate_identity: str | None = None
    certificate_oidc_issuer: str | None = None
    base_image: str | None = None
    busybox: str | None = None
    force: bool = False
    replace_version_tags: bool = False  # the documented override of the reproducibility check
    dry_run: bool = False
    report_dir: Path | None = None
    expect_commit: str | None = None  # the commit a scheduled check resolved the tag to (refused if moved)
    outputs: Path | None = None  # a dry run appends its answer here as NAME=value lines (CI job outputs)
    join: tuple[Path, ...] = ()  # platform jobs' records: join their images instead of building (fanout.py)
    # Conformance in shards (pipeline/stages/conformance/shards.py): publish, sign and attest only; test
    # one part of the suite and write its result; join the shard jobs' results instead of running the suite.
    publish_only: bool = False
    shard: Shard | None = None
    shard_result: Path | None = None
    join_shards: tuple[Path, ...] = ()
    # Test seams: smoke-check this image instead of the one build-image pushed; a hook after each stage.
    smoke_image: str | None = None
    conformance: ConformanceMode = "full"  # the conformance stage (pipeline/stages/conformance)
    conformance_suites: tuple[str, ...] = ()  # the suites it runs (default: by the mode; see stage.py)
    conformance_bases: str = "auto"  # auto, upstream or stand-ins (pipeline/stages/conformance/upstream.py)
    after_stage: StageHook | None = None


class Timer:
    """Times each stage into the report, says its name, and calls the hook after it completes."""

    def __init__(self, report: Report, progress: Progress, hook: StageHook | None) -> None:
        self.report = report
        self.progress = progress
        self.hook = hook

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        entry = Stage(name, 0.0, "ok")
        started = time.monotonic()
        self.progress.step(f"== {name}")
        try:
            yield entry
        except BaseException:
            entry.status = "failed"
            raise
        finally:
            entry.seconds = time.monotonic() - started
            self.report.stages.append(entry)
        if self.hook is not None:
            self.hook(name)

    def skipped(self, name: str, detail: str) -> None:
        self.progress.info(f"== {name}: skipped ({detail})")
        self.report.stages.append(Stage(name, 0.0, "skipped", detail))


@dataclass(frozen=True)
class Run:
    """One release after ``resolve`` and ``check``: what each later stage takes."""

    settings: Settings
    options: Options
    report: Report
    timer: Timer
    progress: Progress
    resolved: Resolved
    prefix: str  # the first registry's prefix: where the release builds, tests and signs
    embedded: bool  # that prefix is the embedded local registry
    signing: Signing
    client: Client
    others: Destinations  # every other registry of the release
    signer: Signer  # signs as the release's identity (sign, attest, test-result)

    @property
    def subject(self) -> Subject:
        """What every tag and claim of this release must be about: its version, tag and commit."""
        from pipeline.release.binding import Subject

        return Subject(self.resolved.version, self.resolved.tag, self.resolved.commit)


@dataclass
class Made:
    """What the build side of a release hands on (built now, or reused from the registry)."""

    published: dict[str, PublishedImage]
    layout: Layout | None  # None: reused from the registry, nothing built
    images: dict[str, Descriptor]  # each variant's index descriptor
    plans: dict[str, TagPlan]
    trust_config: str | None  # the trust config that verified the signatures
    checkout: Checkout | None = None  # the fork checked out now (None: reused, nothing checked out)
