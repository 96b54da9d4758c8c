"""Decisions made before anything is built: where the release goes, which variants a loopback
registry gets, and the dry run's plan."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ForkError, UsageError
from pipeline.policy import tagplan
from pipeline.progress import Progress
from pipeline.registry.reference import is_loopback_host
from pipeline.release.context import Options
from pipeline.release.registries import repository_plan
from pipeline.release.report import Report
from pipeline.release.resolution import Resolved
from pipeline.release.state import VariantState

if TYPE_CHECKING:
    from pipeline.config import Settings

NGINX_REPOSITORY = "kaniko-nginx"

DEBUG_NOTE = (
    "debug not built: it needs the pinned busybox from Docker Hub; pass --busybox DIR|REF "
    "(or set pipeline.registry_mirror) to build it too"
)


def destination(settings: Settings, dry_run: bool, progress: Progress) -> tuple[str, bool]:
    """The prefix to release under, and whether it is the embedded registry (started unless dry run)."""
    from pipeline.registry.credentials import Credentials
    from pipeline.services import distribution
    from pipeline.stages import publish

    credentials = Credentials.from_environment(settings.env)
    has_hub = credentials.lookup("docker.io") is not None
    dest = tagplan.resolve_destination(settings.prefix, settings.env, has_docker_hub_credentials=has_hub)
    if dest.prefix is not None:
        return dest.prefix, False
    if dry_run:
        running = distribution.status(settings.cache_dir)
        if running is None:
            return f"127.0.0.1:{distribution.EMBEDDED_PORT}", True
        return running.host, True
    # Said only when the release publishes (an up-to-date run publishes nothing): see the publish stage.
    return publish.destination_prefix(settings, has_hub, progress, warn=False)


def registry_of(prefix: str) -> str:
    from pipeline.registry.reference import Reference

    return Reference.parse(f"{prefix}/{tagplan.EXECUTOR_REPOSITORY}").registry


def local_variants(settings: Settings, options: Options, registry: str, report: Report) -> Settings:
    """For a loopback registry with no busybox source (these machines reach no Docker Hub), every
    variant but debug; elsewhere the configured variants."""

    wanted = settings.variants
    if "debug" not in wanted or len(wanted) == 1 or options.busybox or settings.registry_mirror:
        return settings
    if not is_loopback_host(registry):
        return settings
    report.notes.append(DEBUG_NOTE)
    report.variants = [v for v in wanted if v != "debug"]
    return replace(settings, variants=tuple(report.variants))


def embedded_running(settings: Settings) -> bool:
    from pipeline.services import distribution

    return distribution.status(settings.cache_dir) is not None


def dry_run_plan(
    resolved: Resolved,
    settings: Settings,
    plans: Mapping[str, tagplan.TagPlan],
    states: Mapping[str, VariantState],
    complete: bool,
    options: Options,
    embedded: bool,
    reachable: bool,
) -> dict[str, Any]:
    repositories = {
        variant: repository_plan(tag_plan, states.get(variant)) for variant, tag_plan in plans.items()
    }
    would_build = options.force or not complete
    plan: dict[str, Any] = {
        "version": resolved.version,
        "tag": resolved.tag,
        "commit": resolved.commit,
        "up_to_date": complete,
        "would_build": (
            {"variants": list(settings.variants), "platforms": list(settings.platforms)}
            if would_build
            else None
        ),
        "repositories": repositories,
        "test_image": f"{plans[next(iter(plans))].repository.rsplit('/', 1)[0]}/{NGINX_REPOSITORY}:{resolved.tag}",
    }
    if embedded and not reachable:
        plan["note"] = "the embedded local registry is not running: it would be started, and it holds nothing"
    return plan


COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_outputs(options: Options) -> None:
    """``--outputs`` answers a dry run (the scheduled check); ``--expect-commit`` is a full commit id."""
    if options.outputs is not None and not options.dry_run:
        raise UsageError(
            "--outputs answers a dry run: it goes with --dry-run",
            hint="the scheduled check runs `invoke release --dry-run --outputs FILE`; the release job then "
            "takes --ref RELEASE_TAG --expect-commit RELEASE_COMMIT",
        )
    where = options.outputs
    if where is not None and (where.is_dir() or not where.parent.is_dir()):
        raise UsageError(
            f"--outputs {where} is not a file in an existing directory",
            hint='name a file, e.g. "$GITHUB_OUTPUT" or check.env',
        )
    if options.expect_commit is not None and not COMMIT.fullmatch(options.expect_commit):
        raise UsageError(
            f"--expect-commit {options.expect_commit!r} is not a full commit id",
            hint="pass the 40 hex digits the check printed as RELEASE_COMMIT",
        )


def expect_commit(resolved: Resolved, expected: str | None) -> None:
    """The release a check found work for is the one built: the tag must still name the same commit."""
    if expected is not None and resolved.commit != expected:
        raise ForkError(
            f"tag {resolved.tag} now names commit {resolved.commit}, but the check found {expected}: "
            "the tag moved between the check and the release",
            hint="refusing to build a moved tag; the next scheduled check resolves it afresh",
        )


def check_answer(plan: Mapping[str, Any]) -> dict[str, str]:
    """What the scheduled check hands the release jobs: whether there is work, and what to build."""
    return {
        "RELEASE_WORK": "true" if plan.get("would_build") else "false",
        "RELEASE_TAG": str(plan["tag"]),
        "RELEASE_COMMIT": str(plan["commit"]),
        "RELEASE_VERSION": str(plan["version"]),
    }


def write_outputs(path: Path, plan: Mapping[str, Any]) -> None:
    """Append the check's answer as NAME=value lines (both $GITHUB_OUTPUT and a GitLab dotenv report read
    them). Tags are checked release tags and commits hex, so a value never holds a newline."""
    lines = "".join(f"{name}={value}\n" for name, value in check_answer(plan).items())
    assert "\r" not in lines and lines.count("\n") == 4
    with path.open("a", encoding="utf-8") as handle:
        handle.write(lines)
