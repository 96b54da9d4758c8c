"""The release report: stages and their timings, written as JSON and Markdown; the dry run's plan."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pipeline import record
from pipeline.stages.conformance import conformance_report
from pipeline.stages.conformance.result import ConformanceResult, matrix_table
from pipeline.urls import redact

# How a stage ended, and how a release did.
StageStatus = Literal["ok", "skipped", "failed"]
# "published": published, signed and attested, for shard jobs to test (--publish-only); "shard tested":
# one shard job's part of the conformance suite run and written (--shard)
ReleaseStatus = Literal["released", "up to date", "dry run", "published", "shard tested", "failed"]


@dataclass
class Stage:
    name: str
    seconds: float
    status: StageStatus
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "status": self.status,
            "detail": self.detail,
        }


@dataclass
class Report:
    """What a release did: written as JSON and Markdown, and returned to the task."""

    status: ReleaseStatus = "failed"
    version: str = ""
    tag: str = ""
    commit: str = ""
    url: str = ""
    prefix: str = ""
    embedded: bool = False
    variants: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    go: dict[str, Any] = field(default_factory=dict)  # the Go toolchain of the build: version, pinned
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature: dict[str, Any] = field(default_factory=dict)
    image: str | None = None  # the nginx image build-image pushed, REF@DIGEST
    base: dict[str, Any] | None = None  # the nginx image's base: its name, and the recipe when Debian-made
    smoke: dict[str, Any] | None = None
    conformance: ConformanceResult | None = None  # per case and variant (pipeline/stages/conformance)
    attestations: list[dict[str, Any]] = field(default_factory=list)  # attached this run
    plan: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    started: str = ""
    files: dict[str, str] = field(default_factory=dict)
    # the registries beyond the primary (pipeline.release.registries.Destinations), when there are some
    destinations: Any = field(default=None, repr=False, compare=False)

    @property
    def registries(self) -> list[dict[str, Any]]:
        """Every registry of the release: the primary (``prefix``) first."""
        if self.destinations:
            rows: list[dict[str, Any]] = self.destinations.rows(self.prefix, self.status, self.failed_at)
            return rows
        return [{"prefix": self.prefix, "status": self.status, "primary": True}]

    @property
    def failed_at(self) -> str | None:
        """The stage a failed release stopped in (None when none failed)."""
        return next((stage.name for stage in reversed(self.stages) if stage.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def executor(self) -> str | None:
        image = self.images.get("executor")
        return f"{image['repository']}@{image['digest']}" if image and image.get("digest") else None

    @property
    def bytes_uploaded(self) -> int:
        return sum(int(image.get("bytes_uploaded") or 0) for image in self.images.values())

    def stage_seconds(self) -> dict[str, float]:
        return {stage.name: round(stage.seconds, 2) for stage in self.stages}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "url": redact(self.url),  # a fork URL's user info (a token) is never written
            "prefix": self.prefix,
            "registries": self.registries,
            "embedded": self.embedded,
            "variants": self.variants,
            "platforms": self.platforms,
            "go": self.go,
            "images": self.images,
            "bytes_uploaded": self.bytes_uploaded,
            "executor": self.executor,
            "signature": self.signature,
            "image": self.image,
            "base": self.base,
            "smoke": self.smoke,
            "conformance": self.conformance.to_dict() if self.conformance else None,
            "attestations": self.attestations,
            "plan": self.plan,
            "stages": [stage.to_dict() for stage in self.stages],
            "seconds": round(sum(stage.seconds for stage in self.stages), 2),
            "notes": self.notes,
            "error": self.error,
            "started": self.started,
            "files": self.files,
        }

    def markdown(self) -> str:
        icon = {
            "released": "✅",
            "up to date": "✅",
            "dry run": "📝",
            "published": "📦",
            "shard tested": "🧪",
        }.get(self.status, "❌")
        lines = [f"## {icon} kaniko {self.tag or self.version or '?'}: {self.status}", ""]
        lines += [
            f"- fork: `{redact(self.url)}` at `{self.commit[:12] or '?'}`",
            f"- destination: `{self.prefix or '?'}`"
            + (" (embedded local registry)" if self.embedded else ""),
            f"- variants: {', '.join(self.variants)}; platforms: {', '.join(self.platforms)}",
        ]
        if self.go:
            lines.append(
                f"- Go toolchain: `{self.go.get('version')}`"
                + ("" if self.go.get("pinned") else " (**not the pinned toolchain**: digests may differ)")
            )
        if self.signature:
            lines.append(
                f"- signature identity: `{self.signature.get('identity')}` "
                f"(issuer `{self.signature.get('issuer')}`)"
            )
        if self.images:
            lines.append(f"- bytes uploaded: {self.bytes_uploaded}")
        if self.image:
            lines.append(f"- test image: `{self.image}`")
        if self.base:
            recipe = ", ".join(f"{k} {v}" for k, v in self.base.items() if k not in ("image", "digest"))
            lines.append(
                f"- test image base: `{self.base.get('image')}`" + (f" ({recipe})" if recipe else "")
            )
        if self.error:
            lines += ["", "**Error:**", "", "```", self.error, "```"]
        if self.images:
            lines += ["", "| variant | digest | tags |", "|---|---|---|"]
            for variant, image in self.images.items():
                tags = ", ".join(f"`{t}`" for t in image.get("tags", []))
                kept = image.get("kept") or {}
                if kept:
                    tags += " (kept: " + ", ".join(f"`{t}` at {v}" for t, v in kept.items()) + ")"
                lines.append(f"| {variant} | `{image.get('digest')}` | {tags} |")
        if len(self.registries) > 1:
            lines += ["", "| registry | status | detail |", "|---|---|---|"]
            for row in self.registries:
                error = str(row.get("error") or row.get("note") or "").replace("\n", " ").replace("|", "\\|")
                lines.append(f"| `{row['prefix']}` | {row['status']} | {error} |")
        if self.stages:
            lines += ["", "| stage | status | seconds |", "|---|---|---:|"]
            lines += [f"| {s.name} | {s.status} | {s.seconds:.1f} |" for s in self.stages]
            lines.append(f"| **total** | | {sum(s.seconds for s in self.stages):.1f} |")
        if self.smoke:
            lines += ["", "| smoke check | result | detail |", "|---|---|---|"]
            for check in self.smoke.get("checks", []):
                detail = str(check["detail"]).replace("\n", " ").replace("|", "\\|")
                lines.append(f"| {check['name']} | {'pass' if check['ok'] else 'FAIL'} | {detail} |")
        if self.conformance:
            lines += ["", f"### Conformance: {self.conformance.summary()}", ""]
            lines += [
                matrix_table(self.conformance.matrix),
                "",
                conformance_report.markdown(self.conformance),
            ]
        lines += attestation_lines(self.attestations, self.signature)
        if self.plan:
            lines += ["", "### Plan", "", "```", plan_text(self.plan), "```"]
        for note in self.notes:
            lines += ["", f"> {note}"]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"release-{self.tag or self.version or 'unknown'}-{stamp}"
        json_path = directory / f"{name}.json"
        md_path = directory / f"{name}.md"
        self.files = {"json": str(json_path), "markdown": str(md_path)}
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        markdown = self.markdown()
        record.atomic_write_text(json_path, text)
        record.atomic_write_text(md_path, markdown)
        # The last run's report under fixed names too, for CI steps (`cat report/release.md`).
        record.atomic_write_text(directory / "release.json", text)
        record.atomic_write_text(directory / "release.md", markdown)


def attestation_lines(attestations: list[dict[str, Any]], signature: Mapping[str, Any]) -> list[str]:
    """The report's attestations table, and the cosign command that checks each type."""
    from pipeline.stages.attest import cosign_check

    if not attestations:
        return []
    lines = ["", "| attestation | subject | referrer | bytes |", "|---|---|---|---:|"]
    commands: dict[str, str] = {}
    for item in attestations:
        subject = f"{item['repository']}@{item['digest']}"
        lines.append(f"| {item['predicate_type']} | `{subject}` | `{item['referrer']}` | {item['bytes']} |")
        commands.setdefault(
            item["predicate_type"],
            cosign_check(
                item["predicate_type"],
                subject,
                str(signature.get("identity")),
                str(signature.get("issuer")),
            ),
        )
    lines += ["", "Check them with (one per type; the same for each subject):", "", "```"]
    lines += [*commands.values(), "```"]
    return lines


def plan_text(plan: Mapping[str, Any]) -> str:
    """The dry run's plan for people: what would be built, and each tag's action."""
    lines = [f"kaniko {plan['tag']} (version {plan['version']}, commit {str(plan['commit'])[:12]})"]
    if plan.get("up_to_date"):
        lines.append(
            "up to date: every version tag exists, is signed and tested PASSED, and the rolling tags are in place"
        )
    building = plan.get("would_build")
    if building:
        lines.append(
            f"would build {', '.join(building['variants'])} for {', '.join(building['platforms'])}, "
            f"then build and smoke-test {plan['test_image']}"
        )
    else:
        lines.append("would build nothing")
    others = plan.get("registries") or []
    if others:
        lines.append(f"registry {plan.get('prefix', '?')} (primary: builds, signs and tests there):")
    lines += _repository_lines(plan["repositories"])
    for other in others:
        state = other["status"] + (f": {other['error']}" if other.get("error") else "")
        lines.append(f"registry {other['prefix']} ({state}):")
        if other["status"] in ("failed", "not checked"):  # what it holds is not known: say what would go
            for variant, repo in other["repositories"].items():
                lines.append(
                    f"{repo['repository']} ({variant}): not known what is there; would set "
                    f"{', '.join(repo['version_tags'])} where missing, and move "
                    f"{', '.join(repo['rolling']) or 'no rolling tag'} after smoke passes"
                )
        else:
            lines += _repository_lines(other["repositories"])
    if plan.get("note"):
        lines.append(str(plan["note"]))
    return "\n".join(lines)


def _repository_lines(repositories: Mapping[str, Any]) -> list[str]:
    """Each repository's tags in the plan: what is there, and what the release would do."""
    lines: list[str] = []
    for variant, repo in repositories.items():
        lines.append(f"{repo['repository']} ({variant}):")
        for tag, digest in repo["version_tags"].items():
            if digest:
                there = f"exists at {digest}" + (", signed" if repo.get("signed") else ", NOT validly signed")
                there += f", tests {repo.get('tested') or 'not attested'}"
            else:
                there = "absent: would be set"
            lines.append(f"  {tag:<22} {there}")
        for tag, held in repo["rolling"].items():
            now = (
                f"at {held['digest'][:19]} ({held['version'] or 'no version'})"
                if held["digest"]
                else "absent"
            )
            action = held["action"]
            verb = "would move after smoke passes" if action == "move" else action
            lines.append(f"  {tag:<22} {now}: {verb}")
    return lines
