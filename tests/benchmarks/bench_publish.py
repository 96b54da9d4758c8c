"""Benchmark: publishing with the project's registry client, side by side with `skopeo copy`.

Prints:
1. bytes uploaded when publishing an image the registry already has (goal: 0), as the client reports
   it and as a counting proxy in front of the registry saw it;
2. the time to push a fresh image of the executor's size (~80 MB of incompressible layers in a few
   layers) with the client, and with `skopeo copy --all oci:LAYOUT:executor docker://...` of the same
   layout, each to its own fresh registry, alternating, and their ratio (goal: at most 1.2).

Run from the project root:  python tests/benchmarks/bench_publish.py [--rounds 3] [--mb 80] [--platforms N]
Nothing here asserts timings: it prints figures.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.oci.mediatype import ALL_MANIFEST_TYPES  # noqa: E402
from pipeline.registry.client import Client  # noqa: E402
from pipeline.registry.credentials import Credentials  # noqa: E402
from pipeline.registry.reference import Reference  # noqa: E402
from pipeline.services.distribution import LocalRegistry  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.layouts import build_layout  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le")


def _layer_sizes(total_mb: float) -> list[int]:
    total = int(total_mb * 1024 * 1024)
    # the executor's shape: one big binary layer, a few smaller ones
    return [total * 55 // 100, total * 30 // 100, total * 12 // 100, total * 3 // 100]


def _push_client(layout_root: Path, host: str, repo: str) -> tuple[float, int]:
    from pipeline.oci.layout import Layout

    layout = Layout.open(layout_root)
    desc = layout.refs()["executor"]
    started = time.perf_counter()
    with Client(credentials=Credentials.anonymous()) as client:
        result = client.push_layout(layout, desc, Reference.parse(f"{host}/{repo}"), tags=["v1.25.16"])
    return time.perf_counter() - started, result.bytes_uploaded


def _push_skopeo(skopeo: str, layout_root: Path, host: str, repo: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout_root}:executor",
            f"docker://{host}/{repo}:v1.25.16",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=float, default=80.0, help="megabytes of layers per platform")
    parser.add_argument("--platforms", type=int, default=1, help="platforms in the image (1-4)")
    args = parser.parse_args()
    skopeo = shutil.which("skopeo")
    if skopeo is None or shutil.which("docker-registry") is None:
        print("needs skopeo and docker-registry: run `invoke setup`", file=sys.stderr)
        return 2
    platforms = PLATFORMS[: max(1, min(4, args.platforms))]
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        work = Path(tmp)
        layout, images = build_layout(
            work / "layout", variants=("executor",), layer_sizes=_layer_sizes(args.mb), platforms=platforms
        )
        blob_bytes = sum(
            d.size
            for d in {d.digest: d for d in layout.walk(images["executor"])}.values()
            if d.media_type not in ALL_MANIFEST_TYPES
        )
        print(
            f"image: {len(platforms)} platform(s), {blob_bytes / 1e6:.1f} MB of blobs "
            f"({len(_layer_sizes(args.mb))} random layers per platform)"
        )

        # 1. publishing what the registry already has
        with LocalRegistry(work / "reg-again") as reg:
            _, first = _push_client(layout.root, reg.host, "bench/again")
            with FaultProxy(reg.url) as proxy:
                _, again = _push_client(layout.root, proxy.host, "bench/again")
                seen = proxy.bytes_uploaded()
                requests_seen = proxy.count()
        print(
            f"already there: first push uploaded {first} bytes; second push uploaded {again} bytes "
            f"(client), {seen} bytes of blob upload bodies in {requests_seen} requests (proxy)  [goal 0]"
        )

        # 2. fresh push, side by side with skopeo, alternating which goes first
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(args.rounds):
            with LocalRegistry(work / f"reg-c{i}") as a, LocalRegistry(work / f"reg-s{i}") as b:
                order = ("client", "skopeo") if i % 2 == 0 else ("skopeo", "client")
                for who in order:
                    if who == "client":
                        seconds, sent = _push_client(layout.root, a.host, "bench/fresh")
                        assert sent == blob_bytes, (sent, blob_bytes)
                        ours.append(seconds)
                    else:
                        theirs.append(_push_skopeo(skopeo, layout.root, b.host, "bench/fresh"))
            print(f"round {i + 1}: client {ours[-1]:.2f} s, skopeo copy {theirs[-1]:.2f} s")
        median_ours, median_theirs = statistics.median(ours), statistics.median(theirs)
        print(
            f"fresh push of {blob_bytes / 1e6:.1f} MB, median of {args.rounds}: client {median_ours:.2f} s, "
            f"skopeo copy {median_theirs:.2f} s, ratio {median_ours / median_theirs:.2f}  [goal <= 1.2]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
