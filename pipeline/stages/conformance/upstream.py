"""Real bases through one pull-through cache: ``invoke conformance --bases auto|upstream|stand-ins``.

- ``stand-ins``: the offline stand-in bases (bases.py), as on a machine without the network; a case whose
  base has no stand-in (pinned by digest, or another image) is skipped with the reason.
- ``upstream``: a distribution registry in proxy mode (pipeline/services/distribution.py, ``proxy:
  remoteurl:``) in front of ``--upstream`` (Docker Hub's registry by default; a test passes a second
  local registry) serves Docker Hub's names to both builders: kaniko reads it as its ``--registry-mirror``
  (docker.io's mirror), buildah through a registries.conf that sends docker.io there. The cache fetches
  each manifest and blob once and keeps it, so both builders build on the same bytes. A case whose bases
  are on Docker Hub runs, by tag or pinned by digest; one whose base is on another registry, or that the
  upstream does not have, is skipped with the reason at once. Each case's bases are resolved to their
  manifest digests through the cache before anything runs: they key what memo.py keeps.
- ``auto`` (the default): ``upstream`` when the upstream answers, else ``stand-ins``; the output says
  which and why.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.errors import PipelineError, RegistryError, UsageError
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import DOCKER_HUB, Reference
from pipeline.stages.conformance import bases, forkcases
from pipeline.stages.conformance.builders import Buildah
from pipeline.stages.conformance.cases import Case

if TYPE_CHECKING:
    from pipeline.registry.client import Client

BASES = ("auto", "upstream", "stand-ins")
# a served GET in the cache's access log (combined format): repository, manifests|blobs, reference, agent
_ACCESS = re.compile(r'"GET /v2/(\S+?)/(manifests|blobs)/(\S+) HTTP/[\d.]+" 200 \S+ "[^"]*" "([^"]*)"')
DOCKER_HUB_URL = "https://registry-1.docker.io"
REACH_TIMEOUT = 5.0


@dataclass(frozen=True)
class Upstream:
    """The registry the pull-through cache reads from (in place of Docker Hub's)."""

    url: str

    def describe(self) -> str:
        return f"real bases from {self.url} through a pull-through cache"


@dataclass(frozen=True)
class BaseChoice:
    """``--bases`` and ``--upstream`` as given (see the module's docstring)."""

    mode: str = "auto"
    url: str = ""

    def check(self) -> BaseChoice:
        check(self.mode, self.url)
        return self

    def choose(self, progress: Progress | None = None) -> Upstream | None:
        return choose(self.mode, self.url, progress)


def check(bases: str, url: str) -> None:
    """``--bases`` and ``--upstream`` as given: a UsageError (exit 2) names what is wrong."""
    if bases not in BASES:
        raise UsageError(
            f"--bases {bases!r} is not known",
            hint="use --bases auto (upstream when it answers), upstream or stand-ins",
        )
    if url and bases == "stand-ins":
        raise UsageError(
            "--upstream has no use with --bases stand-ins",
            hint="leave out --upstream, or pass --bases upstream (or auto)",
        )
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--upstream {url!r} is not a registry URL",
                hint="pass http(s)://HOST[:PORT], e.g. https://registry-1.docker.io",
            )
        if parts.username or parts.password:
            raise UsageError(
                "--upstream must not carry credentials",
                hint="pass http(s)://HOST[:PORT] without user:password@",
            )
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise UsageError(
                f"--upstream {url!r} has a path, query or fragment",
                hint="pass only http(s)://HOST[:PORT]: the cache asks it for /v2/...",
            )


def choose(
    bases: str,
    url: str = "",
    progress: Progress | None = None,
    answers: Callable[[str, float], bool] | None = None,
) -> Upstream | None:
    """The upstream to proxy, or None for the stand-ins. ``upstream`` with an upstream that does not
    answer is a RegistryError; ``auto`` then takes the stand-ins and says so."""
    from pipeline.services import distribution

    check(bases, url)
    progress = progress or Silent()
    if bases == "stand-ins":
        progress.info("conformance bases: the offline stand-ins (--bases stand-ins)")
        return None
    target = (url or DOCKER_HUB_URL).rstrip("/")
    reachable = (answers or distribution.answers)(target, REACH_TIMEOUT)
    if bases == "auto":
        if reachable:
            progress.info(f"conformance bases: {Upstream(target).describe()} (--bases auto: it answers)")
            return Upstream(target)
        progress.info(f"conformance bases: the offline stand-ins (--bases auto: {target} does not answer)")
        return None
    if not reachable:
        raise RegistryError(
            f"the upstream registry {target} does not answer /v2/ within {REACH_TIMEOUT:.0f} s, "
            "so no real base can be had",
            hint="check the network (or --upstream), or run with --bases stand-ins (or auto)",
        )
    progress.info(f"conformance bases: {Upstream(target).describe()} (--bases upstream)")
    return Upstream(target)


def hub_reference(image: str) -> Reference | None:
    """``image`` as a Docker Hub reference, or None when it names another registry (or nothing valid)."""
    try:
        ref = Reference.parse(image)
    except PipelineError:
        return None
    return ref if ref.registry == DOCKER_HUB else None


def base_reason(upstream: Upstream) -> Callable[[str, str], str]:
    """forkcases.skip_reason's check of one base with real bases: on Docker Hub, or skipped."""

    def reason(resolved: str, written: str) -> str:
        if resolved.lower() == "scratch" or hub_reference(resolved) is not None:
            return ""
        return (
            f"its base {resolved or written} is not a Docker Hub image, and the pull-through cache "
            f"serves only Docker Hub's names (from {upstream.url})"
        )

    return reason


def recheck(case: Case, upstream: Upstream) -> Case:
    """The case with real bases: a skip that came from the offline check of its bases is made again
    with the upstream's (any other skip stays)."""
    text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace")
    args = dict(case.build_args)
    if case.skip and case.skip != forkcases.skip_reason(text, args):
        return case
    return replace(case, skip=forkcases.skip_reason(text, args, base_reason(upstream)))


def case_bases(case: Case) -> list[Reference]:
    """The Docker Hub images a (runnable) case builds on."""
    text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace")
    images = forkcases.base_images(text, dict(case.build_args))
    found = [hub_reference(resolved) for resolved, _ in images if resolved.lower() != "scratch"]
    return list(dict.fromkeys(ref for ref in found if ref is not None))


def registries_conf(proxy_host: str) -> str:
    """containers-registries.conf(5) for buildah: docker.io is read from the cache only (no fallback to
    the real Docker Hub, so buildah cannot see other bytes than kaniko), plain HTTP on loopback."""
    return (
        'unqualified-search-registries = ["docker.io"]\n'
        'short-name-mode = "permissive"\n\n'
        "[[registry]]\n"
        'prefix = "docker.io"\n'
        f'location = "{proxy_host}"\n'
        "insecure = true\n"
    )


class PullThroughCache:
    """The distribution registry in proxy mode in front of ``upstream``, for one run (under ``root``)."""

    def __init__(self, upstream: Upstream, root: Path) -> None:
        from pipeline.services.distribution import LocalRegistry

        self.upstream = upstream
        self.registry = LocalRegistry(Path(root), proxy=upstream.url)

    @property
    def host(self) -> str:
        return self.registry.host

    def start(self) -> PullThroughCache:
        self.registry.start()
        return self

    def stop(self) -> None:
        self.registry.stop()

    def pulls(self) -> dict[str, dict[str, list[str]]]:
        """What each client (by its User-Agent) read through the cache, from the cache's access log:
        {agent: {"manifests": [repository@reference, ...], "blobs": [repository@digest, ...]}}."""
        try:
            text = self.registry.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
        out: dict[str, dict[str, set[str]]] = {}
        for repository, kind, ref, agent in _ACCESS.findall(text):
            out.setdefault(agent, {"manifests": set(), "blobs": set()})[kind].add(f"{repository}@{ref}")
        return {agent: {k: sorted(v) for k, v in kinds.items()} for agent, kinds in sorted(out.items())}

    def write_registries_conf(self, path: Path) -> Path:
        path.write_text(registries_conf(self.host), encoding="utf-8")
        return path

    def resolve(self, cases: Sequence[Case]) -> tuple[list[Case], dict[str, dict[str, str]]]:
        """Each runnable case's bases by digest, read through the cache: (the cases, a case that cannot
        get a base now skipped with the reason; case name -> {base as written: manifest digest})."""
        from pipeline.registry.client import Client
        from pipeline.registry.credentials import Credentials

        digests: dict[str, str] = {}
        out, keys = [], {}
        with Client(credentials=Credentials.anonymous()) as client:
            for case in cases:
                if case.skip:
                    out.append(case)
                    continue
                found: dict[str, str] = {}
                for ref in case_bases(case):
                    name = str(ref)
                    if name not in digests:
                        digests[name] = self._digest(client, ref)
                    found[name] = digests[name]
                missing = [name for name, digest in found.items() if not digest.startswith("sha256:")]
                if missing:
                    out.append(replace(case, skip=f"its base {missing[0]} {found[missing[0]]}"))
                    continue
                keys[case.name] = found
                out.append(case)
        return out, keys

    def _digest(self, client: Client, ref: Reference) -> str:
        """The manifest digest of ``ref`` through the cache, or why there is none."""
        cached = replace(ref, registry=self.host, tag=ref.tag if ref.digest else ref.tag or "latest")
        try:
            found = client.head_manifest(cached)
        except PipelineError as exc:
            return f"could not be read through the pull-through cache of {self.upstream.url}: {exc.message}"
        if found is None:
            return f"is not on {self.upstream.url}"
        return str(found.digest)


@dataclass
class BuildBases:
    """What the builders build on: buildah (or None), kaniko's docker.io mirror, the cases (a case whose
    real base cannot be had now skipped), and the digests their kept results are keyed by."""

    reference: Buildah | None
    mirror: str
    cases: Sequence[Case]
    digests: dict[str, str] = field(default_factory=dict)
    case_digests: dict[str, dict[str, str]] = field(default_factory=dict)
    cache: PullThroughCache | None = None  # the pull-through cache of real bases


def prepare(
    real: Upstream | None,
    cases: Sequence[Case],
    *,
    reference: str,
    needs_debian: bool,
    cache_dir: Path,
    registry_host: str,
    stack: contextlib.ExitStack,
    progress: Progress,
) -> BuildBases:
    """The bases of a run: with ``real``, a pull-through cache of it (stopped by ``stack``) that kaniko
    and buildah both read; else the stand-ins, pushed to the run's registry and put in buildah's storage."""
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    root = Path(cache_dir) / "conformance"
    if real is not None:  # real bases: one pull-through cache for both builders
        cache = PullThroughCache(real, Path(tempfile.mkdtemp(prefix="kp-pull-through-")))
        stack.callback(shutil.rmtree, cache.registry.root, ignore_errors=True)
        stack.callback(cache.stop)
        cache.start()
        progress.step(f"conformance: {real.describe()} at {cache.host}")
        found, case_digests = cache.resolve(cases)
        builder = None
        if reference == "buildah":
            conf = cache.write_registries_conf(cache.registry.root / "registries.conf")
            builder = Buildah(root / "buildah-upstream", registries_conf=conf)
        return BuildBases(builder, cache.host, found, {}, case_digests, cache)
    base_images = [bases.busybox(cache_dir)]
    if needs_debian:
        base_images.append(bases.debian(cache_dir, progress))
    progress.step(f"conformance: stand-in bases through the local registry {registry_host}")
    with Client(credentials=Credentials.anonymous()) as client:
        bases.publish(base_images, client, registry_host)
    builder = None
    if reference == "buildah":
        builder = Buildah(root / "buildah")
        builder.load_bases(base_images, registry_host)
    digests = {base.repository: base.descriptor.digest for base in base_images}
    return BuildBases(builder, registry_host, cases, digests)
