"""Benchmark: what checking the cache costs on a hit (issue 21 item 4). Prints, for each cached
binaries entry (five binaries of one platform) and for the layer cache, the bytes hashed, the time and
the throughput; the cache is the pipeline's (fill it first with `invoke build`).

Usage: python tests/benchmarks/bench_cache_verify.py [CACHE_DIR]   (default: the settings' cache dir)
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline import config
from pipeline.golang import compile
from pipeline.image import layers
from pipeline.oci.descriptor import Platform


def _timed(label: str, size: int, check: object) -> None:
    started = time.perf_counter()
    ok = check() is not None  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"{label:<44} {size / 1e6:8.1f} MB {seconds:7.3f} s {size / 1e6 / seconds:8.0f} MB/s  ok={ok}")


def main(argv: list[str]) -> int:
    cache = Path(argv[0]) if argv else config.Settings.load({}).cache_dir
    entries = sorted(p.parent for p in (cache / "binaries").glob("*/binaries.json"))
    blobs = sorted((cache / "layers").glob("*.tar.gz"))
    if not entries and not blobs:
        print(f"nothing cached under {cache}: run `invoke build` first", file=sys.stderr)
        return 2
    print(f"cache {cache}; load average {os.getloadavg()[0]:.2f}")
    for entry in entries:
        size = sum(f.stat().st_size for f in entry.iterdir() if f.name in compile.BINARY_NAMES)
        _timed(
            f"binaries {entry.name[:12]} (hash 5 files)",
            size,
            lambda e=entry: compile._load_cached(e, Platform.parse("linux/amd64")),
        )
    total = sum(blob.stat().st_size for blob in blobs)
    started = time.perf_counter()
    for blob in blobs:
        layers._verified_entry(blob, blob.with_name(blob.name.removesuffix(".tar.gz") + ".json"))
    seconds = time.perf_counter() - started
    print(
        f"{'layers: ' + str(len(blobs)) + ' blobs (sha256)':<44} {total / 1e6:8.1f} MB {seconds:7.3f} s {total / 1e6 / max(seconds, 1e-9):8.0f} MB/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
