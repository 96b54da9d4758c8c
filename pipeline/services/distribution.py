"""A local distribution registry (the `docker-registry` binary, distribution 2.8) on 127.0.0.1.

Two uses:

- :class:`LocalRegistry`: a registry for one process (tests, benchmarks), started and stopped by the
  caller (``with LocalRegistry(root) as reg: ...``), optionally with htpasswd or token auth;
- the embedded default (:func:`up`, :func:`down`, :func:`status`): the registry the pipeline publishes to
  when no destination and no credentials are configured. Its state lives under the project's cache
  (``CACHE/registry``: storage, config, pid file, port file, log) and it keeps running after the task that
  started it, until ``invoke registry.down``.

There is no systemd on the project's machines: the process is started here and stopped by its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.errors import ToolError, UsageError
from pipeline.progress import Progress, Silent
from pipeline.record import atomic_write_text
from pipeline.services import process
from pipeline.system import require_program

BINARY = "docker-registry"
EMBEDDED_PORT = 5000
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class TokenAuth:
    """The registry's `auth.token` section: where clients get tokens and how the registry checks them."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


def find_binary() -> str:
    return require_program(BINARY, "it is the distribution registry the pipeline runs on 127.0.0.1")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when a distribution registry answers ``/v2/`` at ``url`` (200, or 401 when it wants auth)."""
    import requests  # only when it runs: `invoke registry.down` and a publish elsewhere never need it

    try:
        response = requests.get(f"{url}/v2/", timeout=timeout, allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code in (200, 401) and "Docker-Distribution-Api-Version" in response.headers


def _config(
    storage: Path,
    port: int,
    htpasswd: Path | None,
    token: TokenAuth | None,
    delete: bool,
    proxy: str | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        # a pull-through cache logs each request (with the client's User-Agent): who pulled what through it
        "log": {"level": "info", "accesslog": {"disabled": proxy is None}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if htpasswd is not None and token is not None:
        raise ValueError("a registry has one auth method: htpasswd or token, not both")
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "kaniko-pipeline", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.rootcertbundle),
            }
        }
    if proxy is not None:
        # distribution's pull-through cache: reads are served from ``remoteurl`` and kept in storage;
        # pushes are refused
        config["proxy"] = {"remoteurl": proxy}
    return config


def _clean_env() -> dict[str, str]:
    # distribution reads REGISTRY_* variables as overrides of its config file: keep them out.
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not yet reaped) is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_registry_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(BINARY.encode()) for part in cmdline[:1])


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _pid_alive(pid):
                return
            time.sleep(0.05)


class LocalRegistry:
    """One `docker-registry serve` process on 127.0.0.1, with storage under ``root``.

    ``port=0`` picks a free port. ``htpasswd`` (a bcrypt htpasswd file) or ``token`` turn auth on.
    ``proxy`` (a registry URL) makes it a pull-through cache of that registry: read-only, every blob and
    manifest it serves fetched from there once and kept in its storage, each request in its log.
    """

    def __init__(
        self,
        root: Path,
        *,
        port: int = 0,
        htpasswd: Path | None = None,
        token: TokenAuth | None = None,
        delete: bool = True,
        detach: bool = False,
        proxy: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.requested_port = port
        self.htpasswd = htpasswd
        self.token = token
        self.delete = delete
        self.detach = detach
        self.proxy = proxy
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yml"

    @property
    def log_file(self) -> Path:
        return self.root / "registry.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> LocalRegistry:
        binary = find_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        attempts = 1 if self.requested_port else 4
        last_error = ""
        for _ in range(attempts):
            self.port = self.requested_port or free_port()
            config = _config(self.storage, self.port, self.htpasswd, self.token, self.delete, self.proxy)
            # YAML is a superset of JSON: no YAML library needed.
            self.config_file.write_text(json.dumps(config, indent=2) + "\n")
            with open(self.log_file, "ab") as log:
                self.process = subprocess.Popen(
                    [binary, "serve", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(),
                    start_new_session=self.detach,
                )
            ok, last_error = self._wait_ready()
            if ok:
                return self
            self.stop()
            if "address already in use" not in last_error:
                break
        raise ToolError(
            f"the local registry did not start on 127.0.0.1:{self.port}: {last_error}",
            hint=f"see its log {self.log_file}",
        )

    def _wait_ready(self) -> tuple[bool, str]:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False, f"it exited with status {self.process.returncode}: {self._log_tail()}"
            if answers(self.url, timeout=1.0):
                return True, ""
            time.sleep(0.05)
        return False, f"it did not answer /v2/ within {START_TIMEOUT:.0f} s: {self._log_tail()}"

    def _log_tail(self) -> str:
        return process.log_tail(self.log_file, 3, separator=" | ")

    def stop(self) -> None:
        if self.process is None:
            return
        process.stop(self.process, STOP_TIMEOUT)
        self.process = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the embedded default registry ---------------------------------------------------------------


@dataclass(frozen=True)
class Embedded:
    """The embedded registry's state: where it answers, and whether this call started it."""

    host: str
    url: str
    pid: int
    port: int
    root: Path
    started: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "url": self.url,
            "pid": self.pid,
            "port": self.port,
            "root": str(self.root),
            "started": self.started,
        }


def state_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "registry"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def status(cache_dir: Path) -> Embedded | None:
    """The embedded registry when it is running (its pid alive and /v2/ answering), else None."""
    root = state_dir(cache_dir)
    pid = _read_int(root / "registry.pid")
    port = _read_int(root / "registry.port")
    if pid is None or port is None:
        return None
    if not (_pid_alive(pid) and _is_registry_process(pid)):
        return None
    url = f"http://127.0.0.1:{port}"
    if not answers(url):
        return None
    return Embedded(f"127.0.0.1:{port}", url, pid, port, root, started=False)


def up(cache_dir: Path, *, port: int = EMBEDDED_PORT, progress: Progress | None = None) -> Embedded:
    """Start the embedded registry, or reuse the one already running. Port ``port`` when it is free."""
    progress = progress or Silent()
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port", hint="pass 1 to 65535, or 0 for the default")
    running = status(cache_dir)
    if running is not None:
        progress.info(f"local registry already running at {running.host} (pid {running.pid})")
        return running
    root = state_dir(cache_dir)
    find_binary()
    chosen = port if port and port_is_free(port) else 0
    if port and not chosen:
        progress.info(f"port {port} is taken; the local registry takes a free port instead")
    registry = LocalRegistry(root, port=chosen, detach=True)
    registry.start()
    pid = registry.pid
    assert pid is not None
    atomic_write_text(root / "registry.pid", f"{pid}\n")
    atomic_write_text(root / "registry.port", f"{registry.port}\n")
    # The process outlives this one: forget it without stopping it (it runs in its own session).
    registry.process = None
    progress.step(f"local registry started at {registry.host} (pid {pid}, storage {root})")
    return Embedded(registry.host, registry.url, pid, registry.port, root, started=True)


def down(cache_dir: Path, *, progress: Progress | None = None) -> bool:
    """Stop the embedded registry by its recorded pid. True when one was running."""
    progress = progress or Silent()
    root = state_dir(cache_dir)
    pid = _read_int(root / "registry.pid")
    stopped = False
    if pid is not None and _pid_alive(pid) and _is_registry_process(pid):
        _terminate(pid)
        stopped = True
        progress.step(f"local registry stopped (pid {pid})")
    else:
        progress.info("no local registry was running")
    for name in ("registry.pid", "registry.port"):
        (root / name).unlink(missing_ok=True)
    return stopped
