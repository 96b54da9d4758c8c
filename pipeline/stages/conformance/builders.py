"""The two builders of a case: the executor under test (in podman, the kaniko README's profile, as the
build-image stage runs it: pipeline/stages/build_image.py's request, argv and private files) and buildah, the
reference. Both leave a docker-archive tarball that pipeline/stages/conformance/snapshot.py reads.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.errors import ContainerError, ToolError
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import buildah, kaniko
from pipeline.services.podman import Mount, Podman
from pipeline.stages.conformance.bases import MIRROR_HOST, Base
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import plain
from pipeline.system import require_program

TAR_NAME = "image.tar"
CACHE_DIR = "/cache"  # where a --cache-dir (the warmer's output) is mounted
LOG_LINES = 12
PODMAN_COULD_NOT_START = 125  # podman's exit status when the container never started


@dataclass(frozen=True)
class BuilderRun:
    """One run of a builder: its exit status, its output (without terminal colour codes), and the image
    tarball (None when it failed)."""

    returncode: int
    log: str
    tarball: Path | None
    digest: str
    seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "log", plain(self.log))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and (self.tarball is not None or bool(self.digest))

    def tail(self, count: int = LOG_LINES) -> list[str]:
        lines = [line for line in self.log.splitlines() if line.strip()]
        return lines[-count:]


class Kaniko:
    """The executor image under test, run by digest in podman with the README's profile."""

    def __init__(self, podman: Podman, executor: Reference, registry_host: str, mirror: str = "") -> None:
        self.podman = podman
        self.executor = executor
        self.registry_host = registry_host  # the local registry: the stand-ins, cache and push target
        # docker.io's mirror: the stand-ins' registry, or the pull-through cache of real bases (upstream.py)
        self.mirror = mirror or registry_host

    def mirror_args(self) -> list[str]:
        """With the stand-ins, they answer for the Docker Hub mirror too; with the pull-through cache of
        real bases, kaniko reads docker.io from it only (as buildah does), never from Docker Hub itself."""
        if self.mirror == self.registry_host:
            return [f"--registry-map={MIRROR_HOST}={self.registry_host}"]
        return ["--skip-default-registry-fallback"]

    def request(self, case: Case, destination: Reference, extra: Sequence[str]) -> kaniko.BuildRequest:
        args = list(case.args) + list(extra) + self.mirror_args()
        if case.target:
            args.append(f"--target={case.target}")
        return kaniko.BuildRequest(
            executor=self.executor,
            destination=destination,
            context=case.directory,
            dockerfile=case.dockerfile,
            registry_mirror=self.mirror,
            build_args=dict(case.build_args),
            extra_args=tuple(args),
        )

    def build(
        self,
        case: Case,
        out: Path,
        *,
        push: Sequence[Reference] = (),
        extra: Sequence[str] = (),
        caps: Sequence[str] = (),
        cache_dir: Path | None = None,
        timeout: float = 600.0,
    ) -> BuilderRun:
        """Build ``case`` into a --tar-path tarball; with ``push`` it also pushes to those destinations."""
        destination = (
            push[0] if push else Reference.parse(f"{self.registry_host}/conformance/{case.name}:tar")
        )
        more = [f"--destination={ref}" for ref in push[1:]]
        more.append(f"--tar-path={kaniko.OUTPUT_DIR}/{TAR_NAME}")
        if not push:
            more.append("--no-push")
        if cache_dir is not None:
            more.append(f"--cache-dir={CACHE_DIR}")
        request = self.request(case, destination, [*extra, *more])
        mounts = [Mount(cache_dir, CACHE_DIR, read_only=False)] if cache_dir is not None else []
        return self._run(request, out, caps, mounts, timeout)

    def _run(
        self,
        request: kaniko.BuildRequest,
        out: Path,
        caps: Sequence[str],
        mounts: Sequence[Mount],
        timeout: float,
    ) -> BuilderRun:
        config = kaniko.docker_config(Credentials.anonymous(), request.registries)
        name = f"kp-conformance-{secrets.token_hex(4)}"
        started = time.monotonic()
        with kaniko.private_files(config) as (config_file, output_dir):
            spec = kaniko.run_spec(request, config_file, output_dir, name)
            spec = replace(spec, cap_add=(*spec.cap_add, *caps), mounts=(*spec.mounts, *mounts))
            try:
                result = self.podman.command(spec.argv(), what="kaniko", timeout=timeout, check=False)
                if (
                    result.returncode == PODMAN_COULD_NOT_START
                ):  # podman's own trouble, not kaniko's: once more
                    self.podman.rm(name)
                    result = self.podman.command(spec.argv(), what="kaniko", timeout=timeout, check=False)
            except ContainerError as exc:
                self.podman.rm(name)
                return BuilderRun(124, exc.message, None, "", time.monotonic() - started)
            log = (result.stdout or "") + (result.stderr or "")
            tarball, digest = None, ""
            produced = output_dir / TAR_NAME
            if result.returncode == 0:
                if produced.is_file():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(produced), out)
                    tarball = out
                digest_file = output_dir / Path(kaniko.DIGEST_FILE).name
                if digest_file.is_file():
                    digest = digest_file.read_text(encoding="utf-8").strip()
        return BuilderRun(result.returncode, log, tarball, digest, time.monotonic() - started)

    def command(
        self, argv: Sequence[str], *, mounts: Sequence[Mount] = (), timeout: float = 300.0
    ) -> BuilderRun:
        """Run ``argv`` (its first word the entrypoint) in the image, README profile, host network."""
        from pipeline.services.podman import RunSpec

        spec = RunSpec(
            image=str(self.executor),
            args=argv[1:],
            remove=True,
            cap_drop=("ALL",),
            cap_add=kaniko.KANIKO_CAPS,
            no_new_privileges=True,
            mounts=tuple(mounts),
            network="host",
            entrypoint=argv[0],
        )
        started = time.monotonic()
        try:
            result = self.podman.command(spec.argv(), what=f"running {argv[0]}", timeout=timeout, check=False)
        except ContainerError as exc:
            return BuilderRun(124, exc.message, None, "", time.monotonic() - started)
        log = (result.stdout or "") + (result.stderr or "")
        return BuilderRun(
            result.returncode, log, None, "ok" if result.returncode == 0 else "", time.monotonic() - started
        )


_RUNC_ID = re.compile(r"buildah-buildah\d+")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), children before their own children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stop_tree(pid: int) -> None:
    """Stop a timed-out buildah and what it started: runc puts a RUN's processes in their own session
    (out of reach of the process group), so each process below it is killed, then runc's record of the
    container is deleted."""
    below = _descendants(pid)
    ids: set[str] = set()
    for child in below:
        for name in ("cmdline", "cgroup"):
            with contextlib.suppress(OSError):
                ids.update(_RUNC_ID.findall((Path("/proc") / str(child) / name).read_text(errors="replace")))
    for child in [pid, *below]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    runc = shutil.which("runc")
    for container in sorted(ids) if runc else []:
        subprocess.run([runc or "runc", "delete", "--force", container], capture_output=True, check=False)


class Buildah:
    """buildah (Debian's package) with private storage under the cache, run as pipeline/services/buildah.py
    says (runc, OCI isolation, RUN steps on kaniko's network: the host's, a runtime directory of the
    user's own). With ``registries_conf`` (real bases, upstream.py) it pulls each base as it builds,
    from where that file sends docker.io; without, it builds on the stand-ins load_bases put in its
    storage and pulls nothing."""

    def __init__(self, root: Path, registries_conf: Path | None = None) -> None:
        self.binary = require_program(
            "buildah", "the conformance stage builds every case with buildah to compare"
        )
        self.root = Path(root)
        self.env = buildah.environment(self.root)
        self.pull = "never"
        if registries_conf is not None:
            self.env["CONTAINERS_REGISTRIES_CONF"] = str(registries_conf)
            self.pull = "always"  # a tag's current digest, as kaniko reads it through the same cache

    def _argv(self, *args: str) -> list[str]:
        return buildah.argv(self.binary, self.root, *args)

    def _call(
        self, args: Sequence[str], what: str, timeout: float = 600.0
    ) -> subprocess.CompletedProcess[str]:
        argv = self._argv(*args)
        # its own process group: on a timeout the RUN it started (runc and the command) goes with it
        with subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                _stop_tree(process.pid)
                process.communicate()
                raise ToolError(f"buildah {what} did not finish within {timeout:.0f} s") from exc
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    def load_bases(self, bases: Sequence[Base], registry_host: str) -> None:
        """Pull each base from the local registry and name it as Docker Hub would."""
        for base in bases:
            source = f"docker://{registry_host}/{base.repository}:{base.tags[0]}"
            result = self._call(["pull", "--quiet", "--tls-verify=false", source], f"pull {source}")
            if result.returncode != 0:
                raise ToolError(f"buildah could not pull the base {source}: {result.stderr.strip()[-400:]}")
            image_id = result.stdout.strip().splitlines()[-1]
            for name in base.names():
                tagged = self._call(["tag", image_id, name], f"tag {name}")
                if tagged.returncode != 0:
                    raise ToolError(f"buildah could not tag {name}: {tagged.stderr.strip()[-400:]}")
            # keep only the Docker Hub names: the run's registry (a random port) goes away with the run
            self._call(["rmi", source.removeprefix("docker://")], f"untag {source}")

    def version(self) -> str:
        """``buildah --version`` (what buildah's kept images are keyed by)."""
        return self._call(["--version"], "--version").stdout.strip()

    def _containers(self) -> set[str]:
        return set(self._call(["containers", "--quiet", "--notruncate"], "containers").stdout.split())

    def _remove_new_containers(self, before: set[str]) -> None:
        left = sorted(self._containers() - before)
        if left:
            self._call(["rm", *left], f"rm {' '.join(left)}")

    def build(self, case: Case, out: Path, *, timeout: float = 600.0) -> BuilderRun:
        name = f"localhost/kp-conformance/{case.name}-{secrets.token_hex(3)}:latest"
        args = [
            "bud",
            f"--pull={self.pull}",
            "--quiet",
            *buildah.bud_options(),
            f"--file={case.directory / case.dockerfile}",
            f"--tag={name}",
        ]
        if case.target:
            args.append(f"--target={case.target}")
        args += [f"--build-arg={k}={v}" for k, v in sorted(case.build_args.items())]
        started = time.monotonic()
        before = self._containers()
        try:
            built = self._call([*args, str(case.directory)], f"bud {case.name}", timeout)
        except ToolError as exc:  # timed out: its process group is gone; its containers go too
            self._remove_new_containers(before)
            return BuilderRun(124, exc.message, None, "", time.monotonic() - started)
        log = built.stdout + built.stderr
        if built.returncode != 0:
            # a failed bud leaves its working containers (--force-rm needs --layers, which changes what
            # WORKDIR leaves in the image): remove the ones this build made
            self._remove_new_containers(before)
            return BuilderRun(built.returncode, log, None, "", time.monotonic() - started)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            pushed = self._call(["push", "--quiet", name, f"docker-archive:{out}:{name}"], f"push {name}")
            log += pushed.stdout + pushed.stderr
            return BuilderRun(
                pushed.returncode,
                log,
                out if pushed.returncode == 0 else None,
                "",
                time.monotonic() - started,
            )
        finally:
            self._call(["rmi", "--force", name], f"rmi {name}")
