"""Make the nginx base in a test cache (or wait for the process making it, then take it), in a process of
its own, so that a test running as root can have an ordinary user make it in that user's cache:

    python -m tests.support.make_base CACHE

Prints the base's directory (what a pipeline cache's nginx-base directory links to); exit 0.
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path

from pipeline.services import nginxbase


def ensure_base(cache: Path) -> nginxbase.BaseImage:
    """The nginx base in ``cache``: made by the first process that asks (under a lock in ``cache``),
    found there by the others (the tests' nginx_base fixture, tests/support/images.py, takes it so too)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".nginx-base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return nginxbase.ensure(cache)


def main(argv: list[str]) -> int:
    print(ensure_base(Path(argv[1])).store)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
