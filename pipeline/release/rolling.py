"""The last two stages of a release: ``signatures`` (with several registries: the same bundles attached
and verified in every other registry) and ``rolling``, where the rolling tags (``latest``, ``vX.Y``,
``vX``, ``debug``, ``slim``, ...) move: only to a digest whose latest valid test result is PASSED, never
backwards (:func:`pipeline.policy.tagplan.decide_rolling`), and never over a tag whose image the
release's identity did not sign (:func:`pipeline.release.binding.rolling_holds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.release import attestations
from pipeline.release.binding import SignatureChecks, rolling_holds
from pipeline.release.context import Made, Run

if TYPE_CHECKING:
    from pipeline.signing.trust import Trust


def signatures(run: Run, trust: Trust, made: Made) -> None:
    """Every other registry gets the same bundles (signatures, attestations, test results), verified there."""
    if not run.others:
        return
    with run.timer.stage("signatures") as stage:
        checks = SignatureChecks(run.client, trust)
        run.others.copy_signatures(checks, made.published, run.progress)
        run.others.raise_if_failed(run.prefix)
        run.others.verify(checks, made.trust_config, run.progress)
        run.others.raise_if_failed(run.prefix)
        stage.detail = "the same bundles attached and verified in " + ", ".join(
            d.prefix for d in run.others.extra
        )


def rolling(run: Run, trust: Trust, made: Made) -> None:
    """Move each variant's rolling tags to this release's digest, where the policy says they move, in
    every registry; then the release is released."""
    from pipeline.stages import publish

    with run.timer.stage("rolling") as stage:
        moved: list[str] = []
        checks = SignatureChecks(run.client, trust)
        for image in made.published.values():  # never to a digest whose latest result is not PASSED
            attestations.require_passed(checks, image.repository, image.digest, run.subject)
        for variant, image in made.published.items():
            held = rolling_holds(checks, made.plans[variant], image.digest)  # only what the identity signed
            decision = publish.move_rolling(
                run.client,
                made.layout,
                made.images[variant],
                made.plans[variant],
                held={tag: version for tag, (_, version) in held.items()},
                progress=run.progress,
            )
            image.tags.extend(decision.move)
            image.kept = dict(decision.keep)
            image.pending_rolling = []
            run.report.images[variant]["tags"] = list(image.tags)
            run.report.images[variant]["kept"] = dict(decision.keep)
            moved += [f"{image.repository}:{tag}" for tag in decision.move]
        publish.record_published(run.settings.record_file, made.published, run.prefix, run.embedded)
        moved += run.others.move_rolling(checks, made.layout, made.images, run.progress)
        stage.detail = ", ".join(moved) or "none moved"
    run.report.status = "released"
