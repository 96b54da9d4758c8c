"""The release: every stage in order, idempotent, and the rolling tags moved only when all passed.

Stages: ``resolve`` (the fork's release tag and commit, with ``git ls-remote``: cheap, and a reachability
check that fails in seconds), then, unless the release is already complete, ``fork``, ``build``,
``publish`` (by digest, version tags only), ``sign`` (skipped when a valid signature from the configured
identity is already attached), ``verify``, ``nginx-base`` (embedded defaults only), ``build-image``,
``smoke``, and last ``rolling`` (``latest``, ``debug``, ``slim``, ``vX.Y``, ``vX``; never backwards).

A release is *up to date* when every variant's version tag exists, carries a valid signature from the
configured identity, and every rolling tag that may move already names it: then nothing is built. A run
killed at any point finishes the job when started again: every stage is idempotent (the build is
reproducible, publish skips blobs the registry has, signing is skipped when done). A failed stage, the
smoke checks included, leaves every rolling tag where it was.

Embedded defaults (no ``--prefix``, no Docker Hub credentials): the embedded local registry. For any
loopback registry with nothing else configured: a local Sigstore instance (never for another registry);
as kaniko's base, the nginx image made from Debian packages, pushed to that registry and served to kaniko
as its docker.io mirror; and no debug variant unless ``--busybox`` or a registry mirror gives it busybox
(the pinned busybox lives on Docker Hub, which these machines cannot reach).

Every run writes a report: JSON and Markdown (fit for ``$GITHUB_STEP_SUMMARY``) in ``--report-dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform as host_platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import pin as pinfile
from pipeline import record, versions
from pipeline.errors import (
    ForkError,
    PipelineError,
    ReleaseSelectionError,
    SmokeError,
    UsageError,
    VerifyError,
)
from pipeline.progress import Progress, Silent
from pipeline.registry import tagplan
from pipeline.registry.reference import is_loopback_host

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.config import Settings
    from pipeline.registry.client import Client

NGINX_REPOSITORY = "kaniko-nginx"
LS_REMOTE_TIMEOUT = 20.0
# How many trust configs of earlier local Sigstore instances an "up to date" check tries.
LOCAL_TRUST_CONFIGS = 20

# Called after each stage that completed (a test seam: raising there is a run killed between stages).
StageHook = Callable[[str], None]


# -- resolving the release -----------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The release to make: the fork's URL, its tag, the commit the tag names, the version."""

    url: str
    tag: str
    commit: str
    version: str
    pinned: bool


def _offline_hint(url: str) -> str:
    return (
        f"check the network, or point the pipeline at a mirror of the fork: --fork-url PATH_OR_URL "
        f"(or the KANIKO_FORK_URL environment variable), e.g. --fork-url /srv/mirrors/kaniko.git "
        f"(a `git clone --mirror` of {pinfile.DEFAULT_URL.removesuffix('.git')})"
    )


def remote_tags(url: str, *, timeout: float = LS_REMOTE_TIMEOUT) -> dict[str, str]:
    """``git ls-remote --tags URL``: tag -> the commit it names (annotated tags peeled).

    Fails within ``timeout`` seconds when the fork cannot be reached, saying how to use a mirror.
    """
    from pipeline.fork import GIT_ENV, normalize_url

    target = normalize_url(url)
    git = shutil.which("git")
    if git is None:
        raise ForkError("git is not installed", hint="run `invoke setup`")
    argv = [
        git,
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        f"http.lowSpeedTime={max(1, int(timeout))}",
        "ls-remote",
        "--tags",
        target,
    ]
    env = {**os.environ, **GIT_ENV, "GIT_SSH_COMMAND": f"ssh -o ConnectTimeout={max(1, int(timeout))}"}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ForkError(
            f"the fork at {url} did not answer within {timeout:.0f} s", hint=_offline_hint(url)
        ) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
        raise ForkError(
            f"cannot reach the fork at {url}: {'; '.join(lines[-2:]) or f'git exited {result.returncode}'}",
            hint=_offline_hint(url),
        )
    tags: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/") :]
        if name.endswith("^{}"):
            tags[name[:-3]] = sha  # the peeled commit wins over the tag object
        else:
            tags.setdefault(name, sha)
    return tags


def resolve(settings: Settings, ref: str, *, url: str | None = None) -> Resolved:
    """The release ``ref`` names (a tag, or ``latest``; default the pin's tag), checked against the pin."""
    pin = pinfile.load(settings.pin_file)
    fork_url = url or settings.fork_url or pin.url
    tags = remote_tags(fork_url)
    wanted = (ref or "").strip() or pin.tag
    if wanted == "latest":
        release = versions.newest(tags, prerelease=settings.prerelease, source=f"the fork at {fork_url}")
    else:
        candidates = [wanted, wanted[1:] if wanted[:1] in ("v", "V") else "v" + wanted]
        found = next((name for name in candidates if name in tags), None)
        version = versions.parse_tag(found) if found else None
        if found is None or version is None:
            newest = [r.tag for r in versions.releases(tags)[:5]]
            raise ReleaseSelectionError(
                f"the fork at {fork_url} has no release tag {wanted!r}",
                hint="its newest release tags: " + (", ".join(newest) or "none") + "; or use --ref latest",
            )
        release = versions.Release(found, version)
    commit = tags[release.tag]
    pinned = release.tag == pin.tag
    if pinned and commit != pin.commit:
        raise ForkError(
            f"tag {release.tag} of the fork at {fork_url} names commit {commit}, but the pin says "
            f"{pin.commit}: the tag was moved",
            hint="refusing to release a moved tag; if the new commit is trusted, update fork/pin.json",
        )
    return Resolved(fork_url, release.tag, commit, str(release.version), pinned)


# -- signing identity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signing:
    """How the release signs and whom it trusts: a local Sigstore instance, or a configured one."""

    local: bool
    identity: str
    issuer: str
    trust_config: str | None  # None: the public instance (or, when local, each earlier local instance)
    identity_token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        where = "the local Sigstore instance" if self.local else (self.trust_config or "public Sigstore")
        return f"{self.identity} (issuer {self.issuer}, {where})"


def choose_signing(
    settings: Settings,
    registry: str,
    *,
    trust_config: str | None,
    identity_token: str | None,
    certificate_identity: str | None,
    certificate_oidc_issuer: str | None,
) -> Signing:
    """A local Sigstore instance for a loopback registry when nothing else is configured; else the
    configured instance, which needs the identity and issuer that verification checks."""
    from pipeline.signing import identity as identities
    from pipeline.signing import localsigstore

    configured = trust_config or (str(settings.trust_config) if settings.trust_config else None)
    explicit = bool(
        configured
        or identity_token
        or settings.env.get(identities.TOKEN_ENV, "").strip()
        or certificate_identity
        or certificate_oidc_issuer
    )
    if not explicit and is_loopback_host(registry):
        return Signing(True, localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER, None)
    if not certificate_identity or not certificate_oidc_issuer:
        raise UsageError(
            f"releasing to {registry} signs with a real Sigstore instance, and checking those "
            "signatures needs the signer's identity",
            hint="pass --certificate-identity (the signing certificate's SAN, e.g. the workflow's "
            "URL in GitHub Actions) and --certificate-oidc-issuer",
        )
    return Signing(False, certificate_identity, certificate_oidc_issuer, configured, identity_token)


def _local_trust_configs(cache_dir: Path) -> list[Path]:
    found = list((cache_dir / "sigstore").glob("*/trust_config.json"))
    found.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    return found[:LOCAL_TRUST_CONFIGS]


def _trust_configs(settings: Settings, signing: Signing) -> list[tuple[str | None, ClientTrustConfig]]:
    from pipeline.errors import ConfigError
    from pipeline.signing import trust

    if signing.local:
        out: list[tuple[str | None, ClientTrustConfig]] = []
        for found in _local_trust_configs(settings.cache_dir):
            with contextlib.suppress(ConfigError):  # an unreadable leftover is not a reason to fail
                out.append((str(found), trust.load(found)))
        return out
    return [(signing.trust_config, trust.load(Path(signing.trust_config) if signing.trust_config else None))]


def signed_by(
    client: Client,
    repository: str,
    digest: str,
    signing: Signing,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> str | None:
    """The trust config under which ``repository@digest`` has a valid signature from the identity
    (``""`` for the public instance), or None when it has none."""
    from pipeline import sign as sign_stage
    from pipeline.registry.reference import Reference
    from pipeline.signing.verify import Policy

    policy = Policy(signing.identity, signing.issuer)
    ref = Reference.parse(f"{repository}@{digest}")
    for path, config in configs:
        try:
            result = sign_stage.verify(ref, client=client, policy=policy, config=config)
        except VerifyError:
            return None
        if result.verified:
            return path or ""
    return None


# -- what the registry holds ------------------------------------------------------------------------


@dataclass
class VariantState:
    """One variant in the registry: its version tag's digest, and each rolling tag's holder."""

    plan: tagplan.TagPlan
    digest: str | None  # what the version tag names now (None: not there)
    rolling: dict[str, tuple[str | None, str | None]]  # tag -> (digest, version it holds)
    signed: str | None = None  # trust config that verified the digest (None: no valid signature)

    @property
    def decision(self) -> tagplan.RollingDecision:
        return tagplan.decide_rolling(self.plan, {tag: held[1] for tag, held in self.rolling.items()})

    @property
    def rolling_done(self) -> bool:
        return self.digest is not None and all(
            self.rolling[tag][0] == self.digest for tag in self.decision.move
        )

    @property
    def complete(self) -> bool:
        return self.digest is not None and self.signed is not None and self.rolling_done

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "repository": self.plan.repository,
            "version_tags": {tag: self.digest for tag in self.plan.version_tags},
            "rolling": {
                tag: {
                    "digest": digest,
                    "version": version,
                    "action": (
                        f"keep (holds {decision.keep[tag]})"
                        if tag in decision.keep
                        else ("in place" if digest is not None and digest == self.digest else "move")
                    ),
                }
                for tag, (digest, version) in self.rolling.items()
            },
            "signed": self.signed is not None,
        }


def inspect_registry(
    client: Client,
    plans: Mapping[str, tagplan.TagPlan],
    signing: Signing | None,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> dict[str, VariantState]:
    """What each variant's tags name now, and whether the version's image is validly signed."""
    from pipeline import publish
    from pipeline.registry.reference import Reference

    states: dict[str, VariantState] = {}
    for variant, plan in plans.items():
        repo = Reference.parse(plan.repository)
        found = client.head_manifest(repo.with_tag(plan.version_tags[0]))
        digest = found.digest if found is not None else None
        rolling: dict[str, tuple[str | None, str | None]] = {}
        for tag in plan.rolling_tags:
            held = client.head_manifest(repo.with_tag(tag))
            version = publish.held_version(client, repo.with_tag(tag)) if held is not None else None
            rolling[tag] = (held.digest if held is not None else None, version)
        state = VariantState(plan, digest, rolling)
        if digest is not None and signing is not None and configs:
            state.signed = signed_by(client, plan.repository, digest, signing, configs)
        states[variant] = state
    return states


# -- the report --------------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    seconds: float
    status: str  # ok, skipped, failed
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

    status: str = "failed"  # released, up to date, dry run, failed
    version: str = ""
    tag: str = ""
    commit: str = ""
    url: str = ""
    prefix: str = ""
    embedded: bool = False
    variants: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    signature: dict[str, Any] = field(default_factory=dict)
    image: str | None = None  # the nginx image build-image pushed, REF@DIGEST
    smoke: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    started: str = ""
    files: dict[str, str] = field(default_factory=dict)

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
            "url": self.url,
            "prefix": self.prefix,
            "embedded": self.embedded,
            "variants": self.variants,
            "platforms": self.platforms,
            "images": self.images,
            "bytes_uploaded": self.bytes_uploaded,
            "executor": self.executor,
            "signature": self.signature,
            "image": self.image,
            "smoke": self.smoke,
            "plan": self.plan,
            "stages": [stage.to_dict() for stage in self.stages],
            "seconds": round(sum(stage.seconds for stage in self.stages), 2),
            "notes": self.notes,
            "error": self.error,
            "started": self.started,
            "files": self.files,
        }

    def markdown(self) -> str:
        icon = {"released": "✅", "up to date": "✅", "dry run": "📝"}.get(self.status, "❌")
        lines = [f"## {icon} kaniko {self.tag or self.version or '?'}: {self.status}", ""]
        lines += [
            f"- fork: `{self.url}` at `{self.commit[:12] or '?'}`",
            f"- destination: `{self.prefix or '?'}`"
            + (" (embedded local registry)" if self.embedded else ""),
            f"- variants: {', '.join(self.variants)}; platforms: {', '.join(self.platforms)}",
        ]
        if self.signature:
            lines.append(
                f"- signature identity: `{self.signature.get('identity')}` "
                f"(issuer `{self.signature.get('issuer')}`)"
            )
        if self.images:
            lines.append(f"- bytes uploaded: {self.bytes_uploaded}")
        if self.image:
            lines.append(f"- test image: `{self.image}`")
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
        if self.stages:
            lines += ["", "| stage | status | seconds |", "|---|---|---:|"]
            lines += [f"| {s.name} | {s.status} | {s.seconds:.1f} |" for s in self.stages]
            lines.append(f"| **total** | | {sum(s.seconds for s in self.stages):.1f} |")
        if self.smoke:
            lines += ["", "| smoke check | result | detail |", "|---|---|---|"]
            for check in self.smoke.get("checks", []):
                detail = str(check["detail"]).replace("\n", " ").replace("|", "\\|")
                lines.append(f"| {check['name']} | {'pass' if check['ok'] else 'FAIL'} | {detail} |")
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


def plan_text(plan: Mapping[str, Any]) -> str:
    """The dry run's plan for people: what would be built, and each tag's action."""
    lines = [f"kaniko {plan['tag']} (version {plan['version']}, commit {str(plan['commit'])[:12]})"]
    if plan.get("up_to_date"):
        lines.append("up to date: every version tag exists, is signed, and the rolling tags are in place")
    building = plan.get("would_build")
    if building:
        lines.append(
            f"would build {', '.join(building['variants'])} for {', '.join(building['platforms'])}, "
            f"then build and smoke-test {plan['test_image']}"
        )
    else:
        lines.append("would build nothing")
    for variant, repo in plan["repositories"].items():
        lines.append(f"{repo['repository']} ({variant}):")
        for tag, digest in repo["version_tags"].items():
            if digest:
                there = f"exists at {digest}" + (", signed" if repo.get("signed") else ", NOT validly signed")
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
    if plan.get("note"):
        lines.append(str(plan["note"]))
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------------------


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
    dry_run: bool = False
    report_dir: Path | None = None
    # Test seams: smoke-check this image instead of the one build-image pushed; a hook after each stage.
    smoke_image: str | None = None
    after_stage: StageHook | None = None


class _Timer:
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


def _destination(settings: Settings, dry_run: bool, progress: Progress) -> tuple[str, bool]:
    """The prefix to release under, and whether it is the embedded registry (started unless dry run)."""
    from pipeline import publish
    from pipeline.registry import local
    from pipeline.registry.credentials import Credentials

    credentials = Credentials.from_environment(settings.env)
    has_hub = credentials.lookup("docker.io") is not None
    dest = tagplan.resolve_destination(settings.prefix, settings.env, has_docker_hub_credentials=has_hub)
    if dest.prefix is not None:
        return dest.prefix, False
    if dry_run:
        running = local.status(settings.cache_dir)
        if running is None:
            return f"127.0.0.1:{local.EMBEDDED_PORT}", True
        return running.host, True
    return publish.destination_prefix(settings, None, has_hub, progress)


def _registry_of(prefix: str) -> str:
    from pipeline.registry.reference import Reference

    return Reference.parse(f"{prefix}/{tagplan.EXECUTOR_REPOSITORY}").registry


def run(settings: Settings, options: Options, *, progress: Progress | None = None) -> Report:
    """`invoke release`. Returns the report (status released, up to date or dry run); raises the failing
    stage's PipelineError after writing the report when a stage fails."""
    progress = progress or Silent()
    report = Report(
        variants=list(settings.variants),
        platforms=list(settings.platforms),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report_dir = options.report_dir or settings.cache_dir / "runs"
    timer = _Timer(report, progress, options.after_stage)
    try:
        _run(settings, options, report, timer, progress)
    except PipelineError as exc:
        report.status = "failed"
        report.error = str(exc)
        report.write(report_dir)
        record.save(settings.record_file, "release", report.to_dict())
        raise
    report.write(report_dir)
    if not options.dry_run:
        record.save(settings.record_file, "release", report.to_dict())
    return report


def _run(settings: Settings, options: Options, report: Report, timer: _Timer, progress: Progress) -> None:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    with timer.stage("resolve") as stage:
        resolved = resolve(settings, options.ref)
        report.version, report.tag, report.commit, report.url = (
            resolved.version,
            resolved.tag,
            resolved.commit,
            resolved.url,
        )
        prefix, embedded = _destination(settings, options.dry_run, progress)
        report.prefix, report.embedded = prefix, embedded
        registry = _registry_of(prefix)
        settings = _local_variants(settings, options, registry, report)
        signing = choose_signing(
            settings,
            registry,
            trust_config=str(settings.trust_config) if settings.trust_config else None,
            identity_token=options.identity_token,
            certificate_identity=options.certificate_identity,
            certificate_oidc_issuer=options.certificate_oidc_issuer,
        )
        report.signature = {"identity": signing.identity, "issuer": signing.issuer, "local": signing.local}
        plans = tagplan.plan(resolved.version, prefix, settings.variants)
        stage.detail = f"{resolved.tag} ({resolved.commit[:12]}) from {resolved.url} -> {prefix}"

    credentials = Credentials.from_environment(settings.env)
    with Client(credentials=credentials, insecure=settings.insecure, progress=progress) as client:
        with timer.stage("check") as stage:
            reachable = not (options.dry_run and embedded and not _embedded_running(settings))
            configs = _trust_configs(settings, signing) if reachable else []
            states = inspect_registry(client, plans, signing, configs) if reachable else {}
            complete = bool(states) and all(state.complete for state in states.values())
            stage.detail = "complete" if complete else "work to do"
        if options.dry_run:
            report.status = "dry run"
            report.plan = _plan(resolved, settings, plans, states, complete, options, embedded, reachable)
            return
        if complete and not options.force:
            report.status = "up to date"
            for variant, state in states.items():
                report.images[variant] = {
                    "repository": state.plan.repository,
                    "digest": state.digest,
                    "tags": [*state.plan.version_tags, *state.decision.move],
                    "kept": dict(state.decision.keep),
                    "bytes_uploaded": 0,
                }
            trusted = next(iter(states.values())).signed
            report.signature["trust_config"] = trusted or None
            progress.step(f"{resolved.tag} is up to date at {prefix}: nothing to do")
            return
        _release(settings, options, report, timer, progress, resolved, prefix, embedded, signing, client)


DEBUG_NOTE = (
    "debug not built: it needs the pinned busybox from Docker Hub; pass --busybox DIR|REF "
    "(or set pipeline.registry_mirror) to build it too"
)


def _local_variants(settings: Settings, options: Options, registry: str, report: Report) -> Settings:
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


def _embedded_running(settings: Settings) -> bool:
    from pipeline.registry import local

    return local.status(settings.cache_dir) is not None


def _plan(
    resolved: Resolved,
    settings: Settings,
    plans: Mapping[str, tagplan.TagPlan],
    states: Mapping[str, VariantState],
    complete: bool,
    options: Options,
    embedded: bool,
    reachable: bool,
) -> dict[str, Any]:
    repositories: dict[str, Any] = {}
    for variant, tag_plan in plans.items():
        state = states.get(variant)
        if state is None:
            repositories[variant] = {
                "repository": tag_plan.repository,
                "version_tags": {tag: None for tag in tag_plan.version_tags},
                "rolling": {
                    tag: {"digest": None, "version": None, "action": "move"} for tag in tag_plan.rolling_tags
                },
                "signed": False,
            }
        else:
            repositories[variant] = state.to_dict()
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


def _release(
    settings: Settings,
    options: Options,
    report: Report,
    timer: _Timer,
    progress: Progress,
    resolved: Resolved,
    prefix: str,
    embedded: bool,
    signing: Signing,
    client: Client,
) -> None:
    from pipeline import build as build_stage
    from pipeline import fork as fork_stage
    from pipeline import kaniko, nginxbase, publish, smoke
    from pipeline import sign as sign_stage

    with timer.stage("fork") as stage:
        pin = pinfile.load(settings.pin_file)
        checkout = fork_stage.checkout(
            ref=resolved.tag,
            pin=pin,
            patches_dir=settings.patches_dir,
            cache_dir=settings.cache_dir,
            url=resolved.url,
            prerelease=settings.prerelease,
            progress=progress,
        )
        record.save(settings.record_file, "fork", checkout.to_dict())
        stage.detail = f"{checkout.tag} ({checkout.commit[:12]}) at {checkout.path}"

    with timer.stage("build") as stage:
        built = build_stage.build(
            checkout,
            out=settings.cache_dir / "build" / "layout",
            cache_dir=settings.cache_dir,
            platforms=settings.platforms,
            variants=settings.variants,
            go=settings.go,
            busybox=options.busybox,
            registry_mirror=settings.registry_mirror,
            insecure=settings.insecure,
            pinned_url=pin.url,
            progress=progress,
        )
        record.save(settings.record_file, "build", built.to_dict())
        stage.detail = ", ".join(
            f"{name} {image['digest']}" for name, image in built.to_dict()["images"].items()
        )

    with timer.stage("publish") as stage:
        layout, images = publish.images_from_record(built.to_dict())
        published = publish.publish_images(
            client, layout, images, prefix, version=resolved.version, rolling=False, progress=progress
        )
        _save_publish(settings, published, prefix, embedded)
        for variant, image in published.items():
            report.images[variant] = {
                **image.to_dict(),
                "bytes_uploaded": image.bytes_uploaded,
                "kept": {},
            }
        stage.detail = f"{report.bytes_uploaded} bytes uploaded"

    plans = {variant: tagplan.plan_variant(resolved.version, variant, prefix) for variant in published}
    configs = _trust_configs(settings, signing)
    done = {
        variant: signed_by(client, image.repository, image.digest, signing, configs)
        for variant, image in published.items()
    }
    if all(found is not None for found in done.values()):
        trust_config = next(iter(done.values())) or None
        timer.skipped("sign", "every image already has a valid signature from " + signing.identity)
    else:
        with timer.stage("sign") as stage:
            signed = sign_stage.run_sign(
                settings,
                identity_token=signing.identity_token,
                trust_config=signing.trust_config,
                local=signing.local,
                progress=progress,
            )
            record.save(settings.record_file, "sign", signed)
            trust_config = signed.get("trust_config")
            stage.detail = f"{len(signed['signatures'])} signature(s) as {signed['identity']}"
            if signed["identity"] != signing.identity or signed["issuer"] != signing.issuer:
                raise VerifyError(
                    f"signed as {signed['identity']} (issuer {signed['issuer']}), but verification "
                    f"expects {signing.identity} (issuer {signing.issuer})",
                    hint="make --certificate-identity and --certificate-oidc-issuer match the signing "
                    "identity; rolling tags were not moved",
                )
    report.signature["trust_config"] = trust_config

    with timer.stage("verify") as stage:
        for variant, image in published.items():
            result = sign_stage.run_verify(
                settings,
                image=f"{image.repository}@{image.digest}",
                certificate_identity=signing.identity,
                certificate_oidc_issuer=signing.issuer,
                trust_config=trust_config,
                progress=progress,
            )
            if not result.verified:
                raise VerifyError(
                    f"the {variant} image {image.repository}@{image.digest} has no valid signature",
                    hint=result.explain(),
                )
        stage.detail = f"{len(published)} image(s) verified as {signing.identity}"

    mirror = settings.registry_mirror
    base_image = options.base_image
    # A loopback destination with no base and no mirror given: these machines reach no Docker Hub, so
    # kaniko gets the Debian-made nginx base from the local registry, as its docker.io mirror.
    if base_image is None and mirror is None and is_loopback_host(_registry_of(prefix)):
        with timer.stage("nginx-base") as stage:
            base = nginxbase.ensure(settings.cache_dir, progress=progress)
            pushed = nginxbase.publish(base, client, _registry_of(prefix))
            base_image = nginxbase.docker_hub_name(pushed.digest)
            mirror = _registry_of(prefix)
            stage.detail = f"{base_image} through the mirror {mirror}"

    executor = published.get("executor")
    if executor is None:
        raise UsageError(
            "the release builds no executor variant, so the test image cannot be built",
            hint="include executor in --variants (pipeline.variants)",
        )
    with timer.stage("build-image") as stage:
        pushed_image = kaniko.run(
            settings,
            executor=f"{executor.repository}@{executor.digest}",
            destination=f"{prefix}/{NGINX_REPOSITORY}:{resolved.tag}",
            registry_mirror=mirror or "",
            base_image=base_image or "",
            verify=True,
            certificate_identity=signing.identity,
            certificate_oidc_issuer=signing.issuer,
            trust_config=trust_config or "",
            progress=progress,
        )
        record.save(settings.record_file, "build-image", pushed_image.to_dict())
        report.image = pushed_image.image
        stage.detail = pushed_image.image

    with timer.stage("smoke") as stage:
        checked = smoke.run(settings, image=options.smoke_image or pushed_image.image, progress=progress)
        record.save(settings.record_file, "smoke", checked.to_dict())
        report.smoke = checked.to_dict()
        stage.detail = "passed" if checked.ok else "FAILED: " + ", ".join(c.name for c in checked.failed())
        if not checked.ok:
            stage.status = "failed"
            try:
                checked.raise_for_failure()
            except SmokeError as exc:
                raise SmokeError(exc.message, hint=f"{exc.hint}\nrolling tags were not moved") from None

    with timer.stage("rolling") as stage:
        moved: list[str] = []
        for variant, image in published.items():
            decision = publish.move_rolling(
                client, layout, images[variant], plans[variant], progress=progress
            )
            image.tags.extend(decision.move)
            image.kept = dict(decision.keep)
            image.pending_rolling = []
            report.images[variant]["tags"] = list(image.tags)
            report.images[variant]["kept"] = dict(decision.keep)
            moved += [f"{image.repository}:{tag}" for tag in decision.move]
        _save_publish(settings, published, prefix, embedded)
        stage.detail = ", ".join(moved) or "none moved"
    report.status = "released"


def _save_publish(settings: Settings, published: Mapping[str, Any], prefix: str, embedded: bool) -> None:
    """The publish record, as `invoke publish` writes it (sign, build-image and render read it)."""
    record.save(
        settings.record_file,
        "publish",
        {
            "images": {variant: image.to_dict() for variant, image in published.items()},
            "prefix": prefix,
            "embedded": embedded,
            "pending_rolling": {v: i.pending_rolling for v, i in published.items() if i.pending_rolling},
            "bytes_uploaded": {v: i.bytes_uploaded for v, i in published.items()},
        },
    )


# -- invoke test-e2e -----------------------------------------------------------------------------------

# Caches test-e2e shares with the user's (warm Go builds, the fork clone, the nginx base, node packages).
SHARED_CACHES = ("forks", "go-build", "binaries", "layers", "nginx-base", "node")


def native_platform() -> str:
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"linux/{arch}"


@dataclass
class E2EResult:
    report: Report
    registry: str
    kept: bool
    variants: list[str]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.report.ok,
            "executor": self.report.executor,
            "image": self.report.image,
            "stages": self.report.stage_seconds(),
            "seconds": round(sum(self.report.stage_seconds().values()), 2),
            "variants": self.variants,
            "registry": self.registry if self.kept else None,
            "note": self.note,
            "report": self.report.files.get("markdown"),
        }


def e2e(
    settings: Settings,
    *,
    fork_url: str | None = None,
    keep: bool = False,
    busybox: str | None = None,
    platforms: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> E2EResult:
    """`invoke test-e2e`: the release on embedded defaults against a fresh local registry in a temporary
    state directory, then clean up everything it started (or keep the registry running)."""
    from pipeline.container import Podman
    from pipeline.registry.local import LocalRegistry

    progress = progress or Silent()
    pin = pinfile.load(settings.pin_file)
    url = fork_url or settings.fork_url or pin.url
    started = time.monotonic()
    remote_tags(url)  # fails in seconds, with the way to use a mirror, when the fork is unreachable
    progress.info(f"the fork at {url} answers ({time.monotonic() - started:.1f} s)")

    state = Path(tempfile.mkdtemp(prefix="kaniko-e2e-"))
    cache = state / "cache"
    cache.mkdir()
    for name in SHARED_CACHES:
        shared = settings.cache_dir / name
        shared.mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(shared, target_is_directory=True)
    registry = LocalRegistry(state / "registry", detach=keep)
    registry.start()
    progress.step(f"test-e2e: fresh local registry at {registry.host} (state {state})")
    e2e_settings = replace(
        settings,
        cache_dir=cache,
        fork_url=url,
        prefix=registry.host,
        platforms=tuple(platforms or (native_platform(),)),
        trust_config=None,
        env={k: v for k, v in settings.env.items() if k != "SIGSTORE_ID_TOKEN"},
    )
    report: Report | None = None
    try:
        report = run(
            e2e_settings,
            Options(busybox=busybox, report_dir=settings.cache_dir / "runs" / "e2e"),
            progress=progress,
        )
    finally:
        podman = None
        with contextlib.suppress(PipelineError):
            podman = Podman(cache, progress=progress)
        if podman is not None:
            data = record.read(e2e_settings.record_file)
            pulled = [data.get("build-image", {}).get("executor"), data.get("build-image", {}).get("image")]
            for image in filter(None, pulled):
                podman.rmi(str(image))
        if keep:
            progress.step(
                f"test-e2e: the local registry keeps running at {registry.host} (pid {registry.pid}; "
                f"stop it with `kill {registry.pid}`; its storage is {registry.root})"
            )
            registry.process = None
        else:
            registry.stop()
            shutil.rmtree(state, ignore_errors=True)
    assert report is not None
    if "debug" in report.variants:
        note = f"debug built with busybox from {busybox or settings.registry_mirror}"
    else:
        note = " ".join(report.notes) or "debug not built: not in pipeline.variants"
    return E2EResult(report, registry.host, keep, report.variants, note)
