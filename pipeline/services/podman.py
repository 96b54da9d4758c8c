"""A small, typed wrapper around podman: run, inspect, exec, top, rm, pull, image inspect.

Every call gets the project's containers.conf through ``CONTAINERS_CONF`` (written into the cache):
``default_ulimits = []``, because podman's default rlimits cannot be set on these machines, and the
runc runtime when runc is installed, because crun fails here with hybrid cgroups (ENVIRONMENT.md).
Podman runs rootless when the pipeline runs as an ordinary user; :attr:`Podman.rootless` says which.

Nothing secret ever goes into podman's argv or environment: credentials reach a container only as a
read-only mounted file (see pipeline/stages/build_image.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import scratch, tooloutput
from pipeline.errors import ContainerError, ToolError
from pipeline.progress import Progress, Silent
from pipeline.services import imagestorage
from pipeline.services.process import containers_env
from pipeline.system import require_program, search_path

CONF_NAME = "containers.conf"
STDERR_LINES = tooloutput.TAIL_LINES  # how many of podman's last lines an error quotes


@dataclass(frozen=True)
class Mount:
    """A bind mount: host ``source`` at ``target`` in the container."""

    source: Path
    target: str
    read_only: bool = True

    def arg(self) -> str:
        options = "ro" if self.read_only else "rw"
        return f"--volume={self.source}:{self.target}:{options}"


@dataclass(frozen=True)
class RunSpec:
    """What ``podman run`` is asked to do. Security options are explicit: nothing is implied."""

    image: str
    args: Sequence[str] = ()
    name: str | None = None
    detach: bool = False
    remove: bool = False
    cap_drop: Sequence[str] = ("ALL",)
    cap_add: Sequence[str] = ()
    no_new_privileges: bool = True
    mounts: Sequence[Mount] = ()
    publish: Sequence[str] = ()  # "127.0.0.1:HOSTPORT:CONTAINERPORT"
    network: str | None = None
    user: str | None = None
    pull: str = "never"  # pull explicitly first (Podman.pull), so TLS choices are made in one place
    entrypoint: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # never secrets

    def argv(self) -> list[str]:
        argv = ["run", f"--pull={self.pull}"]
        if self.name:
            argv.append(f"--name={self.name}")
        if self.detach:
            argv.append("--detach")
        if self.remove:
            argv.append("--rm")
        if self.cap_drop:
            argv.append("--cap-drop=" + ",".join(self.cap_drop))
        if self.cap_add:
            argv.append("--cap-add=" + ",".join(self.cap_add))
        if self.no_new_privileges:
            argv.append("--security-opt=no-new-privileges")
        argv += [mount.arg() for mount in self.mounts]
        argv += [f"--publish={spec}" for spec in self.publish]
        if self.network:
            argv.append(f"--network={self.network}")
        if self.user:
            argv.append(f"--user={self.user}")
        if self.entrypoint is not None:
            argv.append(f"--entrypoint={self.entrypoint}")
        argv += [f"--env={key}={value}" for key, value in sorted(self.env.items())]
        argv.append(self.image)
        argv += list(self.args)
        return argv


def containers_conf(runtime: str | None) -> str:
    """The text of the project's containers.conf."""
    lines = [
        "# Written by kaniko-pipeline (pipeline/services/podman.py); podman reads it via CONTAINERS_CONF.",
        "[containers]",
        "# podman's default rlimits cannot be set on these machines (setrlimit: operation not permitted)",
        "default_ulimits = []",
        "",
        "[engine]",
    ]
    if runtime:
        lines.append(f'runtime = "{runtime}"')
    return "\n".join(lines) + "\n"


class Podman:
    """podman with the project's containers.conf; every failure is a ContainerError or ToolError."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        binary: str | None = None,
        progress: Progress | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = binary or require_program(
            "podman", "the kaniko and smoke stages run containers with it"
        )
        self.progress = progress or Silent()
        self.runtime = "runc" if shutil.which("runc", path=search_path()) else None
        self.conf_path = Path(cache_dir) / "podman" / CONF_NAME
        self._write_conf()
        base = containers_env(os.environ if env is None else env)
        base["CONTAINERS_CONF"] = str(self.conf_path)
        self.env = base
        self._run_root: str | None = None

    @property
    def rootless(self) -> bool:
        """True when podman runs rootless (the pipeline runs as an ordinary user)."""
        return os.geteuid() != 0

    def describe(self) -> str:
        mode = "rootless" if self.rootless else "rootful"
        return f"podman ({mode}, runtime {self.runtime or 'default'}, config {self.conf_path})"

    def _write_conf(self) -> None:
        text = containers_conf(self.runtime)
        try:
            if self.conf_path.is_file() and self.conf_path.read_text() == text:
                return
            self.conf_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.conf_path.with_name(f".{CONF_NAME}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, self.conf_path)
        except OSError as exc:
            raise ToolError(
                f"cannot write podman's configuration {self.conf_path}: {exc.strerror or exc}",
                hint="make the cache directory writable or point pipeline.cache_dir elsewhere",
            ) from exc

    # -- the one place podman is executed -----------------------------------------------------
    def command(
        self,
        args: Sequence[str],
        *,
        what: str,
        timeout: float | None = 600.0,
        stream: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``. With ``stream`` podman's stderr and stdout go to our stderr as they come."""
        argv = [self.binary, *args]
        try:
            if stream:
                # The container's output (kaniko's log) goes to the user as it comes; its tail is kept.
                result = tooloutput.stream(argv, self.env, timeout, STDERR_LINES)
            else:
                result = subprocess.run(
                    argv,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
        except FileNotFoundError as exc:
            raise ToolError(
                f"podman ({self.binary}) could not be started: {exc}",
                hint="run `invoke setup` to install podman",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(
                f"{what}: podman did not finish within {timeout:.0f} s",
                hint="see `podman ps -a`; a stuck container can be removed with `podman rm -f NAME`",
            ) from exc
        if check and result.returncode != 0:
            raise ContainerError(
                tooloutput.failure(what, "podman", result.returncode, result.stderr or result.stdout),
                hint=self._hint(result.stderr or ""),
            )
        return result

    def _hint(self, stderr: str) -> str:
        if "rlimit" in stderr:
            return f"podman ignored {self.conf_path}; check that CONTAINERS_CONF is honoured"
        if self.rootless and ("newuidmap" in stderr or "subuid" in stderr or "slirp4netns" in stderr):
            return (
                "rootless podman needs subuid/subgid ranges, newuidmap and a network helper with /dev/net/tun "
                "for this user: `invoke doctor` says what is missing; as root, `invoke setup --user "
                f"{os.environ.get('USER') or os.getuid()}` fixes it"
            )
        return f"this ran {self.describe()}; rerun the podman command by hand to see more"

    # -- operations ---------------------------------------------------------------------------
    def run(
        self, spec: RunSpec, *, what: str = "podman run", timeout: float | None = 600.0, stream: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.command(spec.argv(), what=what, timeout=timeout, stream=stream)

    def start(self, spec: RunSpec, *, what: str = "starting a container") -> str:
        """Run a detached container; returns its id."""
        if not spec.detach:
            spec = RunSpec(**{**spec.__dict__, "detach": True})
        return self.run(spec, what=what, timeout=120.0).stdout.strip()

    def inspect(self, container: str) -> dict[str, Any]:
        return self._one_json(["container", "inspect", container], f"inspecting container {container}")

    def image_inspect(self, image: str) -> dict[str, Any]:
        return self._one_json(["image", "inspect", image], f"inspecting image {image}")

    def image_exists(self, image: str) -> bool:
        return (
            self.command(["image", "exists", image], what="podman image exists", check=False).returncode == 0
        )

    def pull(
        self,
        image: str,
        *,
        tls_verify: bool = True,
        timeout: float = 900.0,
        auth: Mapping[str, Any] | None = None,
    ) -> str:
        """Pull ``image`` (any transport podman knows, e.g. docker://, oci:DIR:REF); returns the image id.
        ``auth``: a Docker config (``auths``) for the registry, given to podman as a private file."""
        args = ["pull", "--quiet"]
        if not tls_verify:
            args.append("--tls-verify=false")
        with private_auth_file(auth) as authfile:
            if authfile is not None:
                args.append(f"--authfile={authfile}")  # the path only: the secret stays in the file
            result = self.command([*args, image], what=f"pulling {image}", timeout=timeout)
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    @contextlib.contextmanager
    def borrowed(
        self, image: str, *, tls_verify: bool = True, auth: Mapping[str, Any] | None = None
    ) -> Iterator[bool]:
        """``image`` in local storage for the duration of the block: pulled if podman does not find it
        (with ``auth``, see :meth:`pull`); what this run added goes again when no run on the machine
        still uses that image, under any name (pipeline/services/leases.py), so runs leave the storage
        as they found it. Yields whether this run pulled it."""
        with imagestorage.leases(self, tls_verify=tls_verify, auth=auth).hold(image) as pulled:
            yield pulled

    def discard(self, image: str) -> None:
        """Untag and remove what runs added to ``image`` if no run uses it (a clean-up after a failure)."""
        imagestorage.leases(self).discard(image)

    def run_root(self) -> str:
        """podman's run root, beside which runs keep their leases on its images."""
        if self._run_root is None:
            self._run_root = self.command(
                ["info", "--format={{.Store.RunRoot}}"], what="podman info"
            ).stdout.strip()
        return self._run_root

    def load_layout(self, layout_dir: Path, ref_name: str, name: str) -> str:
        """Copy the image ``ref_name`` of an OCI layout into podman's storage as ``name``; returns its id.

        podman names an image pulled from ``oci:DIR`` after DIR, and rejects path components such as
        ``.cache``; so it reads the layout through a symlink with a plain name, then tags the image.
        """
        # tempfile's random names may hold "_" next to "-", which a reference path component refuses.
        tmp = Path(tempfile.gettempdir()) / f"kp-layout-{secrets.token_hex(6)}"
        tmp.mkdir(mode=0o700)
        try:
            link = tmp / "layout"
            link.symlink_to(Path(layout_dir).resolve())
            image_id = self.pull(f"oci:{link}:{ref_name}")
            self.tag(image_id, name)
            self.command(["untag", image_id, f"localhost{link}:latest"], what="untagging", check=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return image_id

    def tag(self, image: str, name: str) -> None:
        self.command(["tag", image, name], what=f"tagging {image} as {name}")

    def rmi(self, image: str) -> None:
        """Remove the name ``image`` and its image (unless another name is on it): now, unless a run holds
        a lease on that image (under any name), else when the last such lease ends."""
        imagestorage.leases(self).discard(image, pulled_or_not=True)

    def top(self, container: str, descriptors: Sequence[str]) -> list[list[str]]:
        """``podman top`` rows (header excluded), split on whitespace."""
        out = self.command(["top", container, *descriptors], what=f"listing processes of {container}").stdout
        rows = [line.split() for line in out.splitlines() if line.strip()]
        return rows[1:]

    def logs(self, container: str) -> str:
        result = self.command(["logs", container], what=f"reading logs of {container}", check=False)
        return (result.stdout or "") + (result.stderr or "")

    def rm(self, container: str) -> None:
        """Remove a container (running or not). Never raises: it runs in cleanup paths."""
        with contextlib.suppress(ContainerError, ToolError):
            self.command(["rm", "--force", "--time=2", container], what=f"removing {container}", check=False)

    def exists(self, container: str) -> bool:
        return (
            self.command(
                ["container", "exists", container], what="podman container exists", check=False
            ).returncode
            == 0
        )

    def _one_json(self, args: Sequence[str], what: str) -> dict[str, Any]:
        out = self.command([*args, "--format=json"], what=what).stdout
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise ContainerError(f"{what}: podman printed something that is not JSON") from exc
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, dict):
            raise ContainerError(f"{what}: podman returned no object")
        return data


@contextlib.contextmanager
def private_auth_file(auth: Mapping[str, Any] | None) -> Iterator[Path | None]:
    """A Docker config (``{"auths": ...}``) as a 0600 file in a 0700 temporary directory, deleted after;
    None when it names no registry."""
    if not auth or not auth.get("auths"):
        yield None
        return
    with scratch.private_directory("kp-auth-") as root:
        path = root / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(auth), handle)
        yield path
