"""`invoke release`'s and `invoke test-e2e`'s options as the release's own
:class:`~pipeline.release.context.Options` (empty strings become None, paths are expanded, the
conformance mode and bases are checked). The release code is imported when a task runs, not before."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.taskoptions import EndToEndOptions, PublishOptions, ReleaseOptions
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.release.context import Options
    from pipeline.stages.conformance.result import ConformanceMode


def _path(value: str) -> Path | None:
    return Path(value).expanduser() if value else None


def conformance_mode(mode: str) -> ConformanceMode:
    from pipeline.stages.conformance.release_suite import check_mode

    return check_mode(mode)


def conformance_bases(bases: str) -> str:
    from pipeline.stages.conformance.upstream import check

    check(bases, "")
    return bases


def release_options(o: ReleaseOptions) -> Options:
    from pipeline.release.context import Options
    from pipeline.stages.conformance.shards import Shard

    return Options(
        ref=o.ref,
        identity_token=o.identity_token or None,
        certificate_identity=o.certificate_identity or None,
        certificate_oidc_issuer=o.certificate_oidc_issuer or None,
        base_image=o.base_image or None,
        busybox=o.busybox or None,
        force=o.force,
        replace_version_tags=o.replace_version_tags,
        dry_run=o.dry_run,
        report_dir=_path(o.report_dir),
        outputs=_path(o.outputs),
        expect_commit=o.expect_commit or None,
        join=tuple(Path(path).expanduser() for path in o.join or ()),
        publish_only=o.publish_only,
        shard=Shard.parse(o.shard) if o.shard else None,
        shard_result=_path(o.shard_result),
        join_shards=tuple(Path(path).expanduser() for path in o.join_shard or ()),
        conformance=conformance_mode(o.conformance),
        conformance_suites=tuple(o.conformance_suite or ()),
        conformance_bases=conformance_bases(o.conformance_bases),
    )


def e2e_options(o: EndToEndOptions) -> Options:
    from pipeline.release.context import Options

    return Options(
        busybox=o.busybox or None,
        base_image=o.base_image or None,
        conformance=conformance_mode(o.conformance),
        conformance_bases=conformance_bases(o.conformance_bases),
    )


def platform_record(o: PublishOptions) -> Path | None:
    """`invoke publish --manifests-only --record FILE`: the platform record's path (the two go together)."""
    if o.manifests_only != bool(o.record):
        raise UsageError(
            "--manifests-only and --record go together",
            hint="a platform job runs `invoke build --platforms P`, then "
            "`invoke publish --manifests-only --record FILE`",
        )
    return Path(o.record).expanduser() if o.record else None
