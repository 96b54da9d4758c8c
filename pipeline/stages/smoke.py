"""The smoke stage: run the built nginx image and check it.

The image runs in podman on a free host port (podman picks it: ``-p 127.0.0.1::8080``) with every
capability dropped and no-new-privileges. Checks, each reported on its own:

- ``image-user``: the image config names a non-root user;
- ``image-port``: the image config exposes 8080/tcp;
- ``answers``: the container answers HTTP on port 8080 within the wait limit;
- ``welcome-page``: ``GET /`` is 200 with the nginx welcome page;
- ``process-user``: no process in the container runs as root, and none has capabilities.

The container is always removed, whether the checks pass or fail.
"""

from __future__ import annotations

import http.client
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import record
from pipeline.config import Settings
from pipeline.errors import ContainerError, SmokeError, UsageError
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import is_loopback_host, registry_of
from pipeline.services.podman import Podman, RunSpec

PORT = 8080
WELCOME = "Welcome to nginx!"
ROOT_NAMES = frozenset({"root", "0"})


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class SmokeResult:
    image: str
    checks: list[SmokeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failed(self) -> list[SmokeCheck]:
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "image": self.image, "checks": [check.to_dict() for check in self.checks]}

    def raise_for_failure(self) -> None:
        if not self.ok:
            names = ", ".join(check.name for check in self.failed())
            raise SmokeError(
                f"the image {self.image} failed its smoke checks: {names}",
                hint="; ".join(f"{check.name}: {check.detail}" for check in self.failed()),
            )


def check_image(
    podman: Podman,
    image: str,
    *,
    wait: float = 60.0,
    name: str | None = None,
    progress: Progress | None = None,
    auth: Mapping[str, Any] | None = None,
) -> SmokeResult:
    """Run ``image`` and check it (pulled with ``auth``, a Docker config for its registry, when it is
    not in local storage). Returns every check's result; never leaves the container behind."""
    progress = progress or Silent()
    host = registry_of(image)
    insecure = host is not None and is_loopback_host(host)
    with podman.borrowed(image, tls_verify=not insecure, auth=auth):
        return _check_image(podman, image, wait=wait, name=name, progress=progress)


def _check_image(
    podman: Podman, image: str, *, wait: float, name: str | None, progress: Progress
) -> SmokeResult:
    result = SmokeResult(image=image)
    config = podman.image_inspect(image).get("Config") or {}
    result.checks.append(_check_image_user(config))
    result.checks.append(_check_image_port(config))

    name = name or f"kp-smoke-{secrets.token_hex(4)}"
    spec = RunSpec(
        image=image,
        name=name,
        detach=True,
        cap_drop=("ALL",),
        no_new_privileges=True,
        publish=(f"127.0.0.1::{PORT}",),
    )
    progress.step(f"smoke: running {image} as {name} ({podman.describe()})")
    try:
        try:
            podman.start(spec, what=f"starting {image}")
        except ContainerError as exc:
            result.checks.append(SmokeCheck("answers", False, f"the container did not start: {exc.message}"))
            return result
        port = _host_port(podman, name)
        answered = _wait_for_http(podman, name, port, wait)
        result.checks.append(answered)
        if answered.ok:
            result.checks.append(_check_welcome(port))
        else:
            result.checks.append(
                SmokeCheck("welcome-page", False, "not checked: the container never answered")
            )
        result.checks.append(_check_processes(podman, name))
    finally:
        podman.rm(name)
    return result


def _user_part(user: str) -> str:
    return user.split(":", 1)[0].strip()


def _check_image_user(config: dict[str, Any]) -> SmokeCheck:
    user = str(config.get("User") or "")
    if not user:
        return SmokeCheck("image-user", False, "the image config names no user, so it runs as root")
    if _user_part(user) in ROOT_NAMES:
        return SmokeCheck("image-user", False, f"the image config's user is {user!r} (root)")
    return SmokeCheck("image-user", True, f"user {user!r}")


def _check_image_port(config: dict[str, Any]) -> SmokeCheck:
    ports = sorted((config.get("ExposedPorts") or {}).keys())
    if f"{PORT}/tcp" in ports:
        return SmokeCheck("image-port", True, f"exposes {', '.join(ports)}")
    return SmokeCheck("image-port", False, f"exposes {', '.join(ports) or 'nothing'}, not {PORT}/tcp")


def _host_port(podman: Podman, name: str) -> int:
    info = podman.inspect(name)
    bindings = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{PORT}/tcp") or []
    for binding in bindings:
        port = str(binding.get("HostPort") or "")
        if port.isdigit():
            return int(port)
    raise ContainerError(f"podman published no host port for {PORT}/tcp of {name}")


def _running(podman: Podman, name: str) -> tuple[bool, str]:
    state = podman.inspect(name).get("State") or {}
    return bool(state.get("Running")), str(state.get("Status") or "unknown")


def _get(port: int, timeout: float = 5.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"User-Agent": "kaniko-pipeline-smoke"})
        response = conn.getresponse()
        return response.status, response.read(1 << 20).decode("utf-8", "replace")
    finally:
        conn.close()


def _wait_for_http(podman: Podman, name: str, port: int, wait: float) -> SmokeCheck:
    deadline = time.monotonic() + wait
    last = "no answer yet"
    while True:
        try:
            status, _ = _get(port, timeout=2.0)
            return SmokeCheck("answers", True, f"HTTP {status} on 127.0.0.1:{port}")
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        running, status_text = _running(podman, name)
        if not running:
            logs = "\n".join(podman.logs(name).strip().splitlines()[-5:])
            return SmokeCheck(
                "answers", False, f"the container stopped ({status_text}); its last log lines:\n{logs}"
            )
        if time.monotonic() >= deadline:
            return SmokeCheck(
                "answers", False, f"no HTTP answer on 127.0.0.1:{port} within {wait:.0f} s ({last})"
            )
        time.sleep(0.2)


def _check_welcome(port: int) -> SmokeCheck:
    try:
        status, body = _get(port)
    except (OSError, http.client.HTTPException) as exc:
        return SmokeCheck("welcome-page", False, f"GET / failed: {exc}")
    if status != 200:
        return SmokeCheck("welcome-page", False, f"GET / answered HTTP {status}, not 200")
    if WELCOME not in body:
        first = body.strip().splitlines()[0][:80] if body.strip() else "(empty)"
        return SmokeCheck(
            "welcome-page", False, f"GET / is 200 but not the nginx welcome page (starts {first!r})"
        )
    return SmokeCheck("welcome-page", True, f"GET / is 200 with {WELCOME!r}")


def _check_processes(podman: Podman, name: str) -> SmokeCheck:
    running, status_text = _running(podman, name)
    if not running:
        return SmokeCheck("process-user", False, f"no process to check: the container is {status_text}")
    try:
        rows = podman.top(name, ["pid", "user", "capeff"])
    except ContainerError as exc:
        return SmokeCheck("process-user", False, f"could not list the container's processes: {exc.message}")
    if not rows:
        return SmokeCheck("process-user", False, "the container has no processes")
    root = [row for row in rows if len(row) > 1 and row[1] in ROOT_NAMES]
    if root:
        return SmokeCheck("process-user", False, f"{len(root)} of {len(rows)} processes run as root")
    capable = [row for row in rows if len(row) > 2 and row[2].lower() != "none"]
    if capable:
        return SmokeCheck("process-user", False, f"processes have capabilities: {capable[0][2]}")
    users = sorted({row[1] for row in rows if len(row) > 1})
    return SmokeCheck("process-user", True, f"{len(rows)} processes as {', '.join(users)}, no capabilities")


def run(
    settings: Settings, *, image: str, wait: float = 60.0, progress: Progress | None = None
) -> SmokeResult:
    """`invoke smoke`: check ``image`` (default: the image build-image recorded)."""
    from pipeline.registry.reference import Reference

    if wait <= 0:
        raise UsageError(f"--wait must be a positive number of seconds, not {wait}")
    if image:
        Reference.parse(image)
    else:
        from pipeline.stages.build_image import recorded_image

        image = recorded_image(settings.record_file, needed_by="smoke")
    from pipeline.registry.credentials import Credentials
    from pipeline.services.kaniko import docker_config

    podman = Podman(settings.cache_dir, progress=progress)
    host = registry_of(image)  # an image in a registry that needs credentials is pulled with them
    auth = docker_config(Credentials.from_environment(settings.env), [host]) if host else None
    return check_image(podman, image, wait=wait, progress=progress, auth=auth)


def save_record(record_file: Path, result: SmokeResult) -> None:
    """The smoke record: each check and whether it passed."""
    record.save(record_file, "smoke", result.to_dict())
