"""Race: two processes borrow and release one image under two names at once (issue 20, item 3).

Usage: python tests/benchmarks/bench_image_leases.py [ROUNDS]   (30 by default)
Starts two local registries and pushes one small image to both as an index (a release's executor).
Then two processes, each ROUNDS times and in step: wait a random moment, borrow the image (``Podman.borrowed``) under its own
name (the first registry's index digest, the second registry's platform manifest digest: one image id
in podman's storage), wait a random moment, check that podman still finds the image, release it. Prints the
rounds in which a process lost the image while it held it, and whether the storage is left as found.
Podman's storage is the machine's: the image gets a label of its own, so no other run shares it.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import multiprocessing
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from tests.support import fakeexecutor


def borrower(name: str, rounds: int, cache: Path, step: object, lost: object) -> None:
    podman, chance = Podman(cache), random.SystemRandom()  # not the parent's seed: each its own moments
    for number in range(rounds):
        step.wait()  # type: ignore[attr-defined]
        time.sleep(chance.uniform(0.0, 1.0))
        with podman.borrowed(name, tls_verify=False):
            time.sleep(chance.uniform(0.0, 1.0))
            if not podman.image_exists(name):
                lost.put((number, name))  # type: ignore[attr-defined]
        step.wait()  # type: ignore[attr-defined]


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    work = Path(tempfile.mkdtemp(prefix="kp-bench-leases-"))
    try:
        with LocalRegistry(work / "one") as one, LocalRegistry(work / "two") as two:
            label = secrets.token_hex(6)
            index, _ = fakeexecutor.push_index(Path("/bin/true"), work / "layout-one", one.host, label=label)
            _, manifest = fakeexecutor.push_index(
                Path("/bin/true"), work / "layout-two", two.host, label=label
            )
            names = [str(index), str(manifest)]
            step = multiprocessing.Barrier(2, timeout=120)
            lost: multiprocessing.Queue[tuple[int, str]] = multiprocessing.Queue()
            workers = [
                multiprocessing.Process(target=borrower, args=(name, rounds, work / f"cache-{n}", step, lost))
                for n, name in enumerate(names)
            ]
            started = time.monotonic()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            seconds = time.monotonic() - started
            failed = [worker.exitcode for worker in workers if worker.exitcode != 0]
            losses = []
            while not lost.empty():
                losses.append(lost.get())
            left = [name for name in names if Podman(work / "cache-0").image_exists(name)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lost_rounds = sorted({number for number, _ in losses})
    print(f"{len(lost_rounds)} of {rounds} rounds lost the image ({seconds:.0f} s): rounds {lost_rounds}")
    print("left in storage afterwards:", left or "nothing")
    if failed:
        print(f"a borrower failed (exit status {failed}): see its traceback above")
    return 1 if lost_rounds or left or failed else 0


if __name__ == "__main__":
    sys.exit(main())
