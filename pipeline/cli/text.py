"""The text a task prints without --json: one function per task, from the same dict --json prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.release import Report

Result = dict[str, Any]


def checked_out(r: Result) -> str:
    return (
        f"{r['tag']} ({r['commit'][:12]}, version {r['version']}, module {r['module']}) "
        f"checked out at {r['path']}"
    )


def signed(r: Result) -> str:
    return "\n".join(
        f"signed {s['repository']}@{s['digest']}"
        + (f" ({s['platform']})" if s["platform"] else "")
        + f" as {r['identity']}: referrer {s['referrer']}"
        for s in r["signatures"]
    )


def smoke(r: Result) -> str:
    return "\n".join(
        [f"smoke {'passed' if r['ok'] else 'FAILED'}: {r['image']}"]
        + [f"  {'ok  ' if ch['ok'] else 'FAIL'} {ch['name']}: {ch['detail']}" for ch in r["checks"]]
    )


def nginx_base(r: Result) -> str:
    return f"nginx base {r['digest']} at {r['layout']}" + (
        f"; pushed, use --base-image {r['base_image']}" if r.get("base_image") else ""
    )


def published(r: Result) -> str:
    if "record" in r:  # --manifests-only: platform images by digest, and the record for the join
        return "\n".join(
            [f"{variant} {platform}: {desc['digest']} under {r['prefix']} (by digest, no tag)"
             for variant, by_platform in r["manifests"].items() for platform, desc in by_platform.items()]
            + [f"record for `invoke release --join`: {r['record']}"]
        )  # fmt: skip
    return "\n".join(
        f"{variant}: {image['repository']}@{image['digest']} tags {', '.join(image['tags'])}"
        for variant, image in r["images"].items()
    )


def e2e(r: Result) -> str:
    return "\n".join(
        [f"test-e2e {'passed' if r['ok'] else 'FAILED'} in {r['seconds']:.1f} s"]
        + [f"  executor: {r['executor']}", f"  image:    {r['image']}"]
        + [f"  {name}: {seconds:.1f} s" for name, seconds in r["stages"].items()]
        + [f"  note: {r['note']}"]
        + ([f"  registry kept at {r['registry']}"] if r["registry"] else [])
    )


def release(report: Report) -> str:
    if report.status == "dry run":
        from pipeline.release import plan_text

        return "\n".join(
            [
                "dry run (nothing changed):",
                plan_text(report.plan or {}),  # a dry run always has its plan
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
