"""Test helpers about this machine's processes and names: every process's argv, watched while a run goes
on (a secret must never show there), and a host name that is this machine without being loopback by name."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from pipeline.registry.reference import is_loopback_host
from tests.conftest import missing


class ArgvWatch:
    """Reads every process's argv (/proc/*/cmdline) while the release runs; notes any that holds ``secret``."""

    def __init__(self, secret: str) -> None:
        self.needle = secret.encode()
        self.leaks: list[str] = []
        self.seen: set[str] = set()  # program names seen: proof that the watch saw the release's children
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    argv = (proc / "cmdline").read_bytes()
                    self.seen.add(Path(argv.split(b"\0", 1)[0].decode(errors="replace")).name)
                    if self.needle in argv:
                        self.leaks.append(argv.replace(b"\0", b" ").decode(errors="replace"))
            self._stop.wait(0.05)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def loopback_alias() -> str:
    """A host name that resolves to 127.0.0.1 but is not loopback by name (``localhost``, 127.0.0.0/8),
    so the client treats a registry there like any remote one: TLS, unless ``--insecure`` names it.
    Machines of this kind have one: the host name, in /etc/hosts."""
    candidates = [socket.gethostname()]
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            candidates += fields[1:] if fields[:1] == ["127.0.0.1"] else []
    for name in dict.fromkeys(candidates):
        if not name or is_loopback_host(name):
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
        except OSError:
            continue
        if found == {"127.0.0.1"}:
            return name
    message = "no host name but localhost resolves to 127.0.0.1 here: add one to /etc/hosts"
    missing(message)
