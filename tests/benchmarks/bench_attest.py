"""Benchmark: what the attestations add to a release, and `invoke reproduce` warm and cold, against the
real fork (a URL, or the mirror named by KANIKO_FORK_URL), for linux/amd64 and the variants that need no
busybox (executor, slim, warmer). Prints:

1. the sign stage (signatures) for reference, then the attest stage (SBOM per platform image, SLSA
   provenance per index) and the test-result stage: seconds (local Sigstore instance start included, as
   in a release) and bytes added to the registry (bundles + referrer manifests);
2. `reproduce` of the executor: cold (an empty cache: clone, Go build from nothing) and warm (again).

Usage: python tests/benchmarks/bench_attest.py [FORK_URL]     Nothing here asserts timings.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import config  # noqa: E402
from pipeline.progress import Silent  # noqa: E402
from pipeline.registry.client import Client  # noqa: E402
from pipeline.registry.credentials import Credentials  # noqa: E402
from pipeline.release import attestations  # noqa: E402
from pipeline.release.binding import Subject  # noqa: E402
from pipeline.release.signer import Signer, Signing, trust_of  # noqa: E402
from pipeline.services import localsigstore  # noqa: E402
from pipeline.services.distribution import LocalRegistry  # noqa: E402
from pipeline.source import pinfile  # noqa: E402
from pipeline.stages import (  # noqa: E402
    build,  # noqa: E402
    fork,  # noqa: E402
    publish,
    reproduce,
    sign,  # noqa: E402
)

VARIANTS = ("executor", "slim", "warmer")


def _settings(cache: Path, fork_url: str, prefix: str) -> config.Settings:
    return config.Settings.load(
        {
            "cache_dir": str(cache),
            "fork_url": fork_url,
            "prefix": prefix,
            "platforms": "linux/amd64",
            "variants": ",".join(VARIANTS),
        },
        env=dict(os.environ),
    )


def main(argv: list[str]) -> int:
    fork_url = argv[0] if argv else os.environ.get("KANIKO_FORK_URL", "")
    if not fork_url:
        print("pass FORK_URL or set KANIKO_FORK_URL", file=sys.stderr)
        return 2
    # The release side's cache may persist (BENCH_ATTEST_CACHE): its build is not what is measured.
    kept = os.environ.get("BENCH_ATTEST_CACHE")
    with tempfile.TemporaryDirectory(prefix="bench-attest-") as tmp, LocalRegistry(Path(tmp) / "reg") as reg:
        work = Path(tmp)
        settings = _settings(Path(kept) if kept else work / "cache", fork_url, reg.host)
        pin = pinfile.load(settings.pin_file)
        checkout = fork.checkout(
            ref=pin.tag, pin=pin, patches_dir=settings.patches_dir, cache_dir=settings.cache_dir, url=fork_url
        )
        started = time.time()
        built = build.build(
            checkout,
            build.BuildSpec(
                out=work / "layout",
                cache_dir=settings.cache_dir,
                platforms=settings.platforms,
                variants=VARIANTS,
                pinned_url=pin.url,
            ),
        )
        finished = time.time()
        print(f"build (cold, for reference): {finished - started:.1f} s")
        signing = Signing(True, localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER, None)
        with Client(credentials=Credentials.anonymous()) as client:
            layout, images = build.layout_images(built.to_dict())
            published = publish.publish_images(
                client, layout, images, reg.host, version=checkout.version, rolling=False
            )
            t0 = time.perf_counter()
            signed = sign.run_sign(
                settings, images=[f"{i.repository}@{i.digest}" for i in published.values()], local=True
            )
            t1 = time.perf_counter()
            facts = attestations.build_facts(checkout, built.inputs, pin.url)
            subjects = {v: (i.repository, images[v]) for v, i in published.items()}
            signer = Signer(settings, signing, Silent())
            trusted = trust_of(settings, signing)  # the kept trust root: run_sign's instance kept it
            attester = attestations.Attester(settings, signer, trusted, client, Silent())
            made = attestations.attest_build(attester, facts, subjects, layout, (started, finished))
            t2 = time.perf_counter()
            executor = f"{published['executor'].repository}@{published['executor'].digest}"
            tests = attestations.attest_tests(
                attester,
                Subject(checkout.version, checkout.tag, checkout.commit),
                {v: (i.repository, i.digest) for v, i in published.items()},
                [("smoke/welcome-page", True), ("smoke/answers", True)],
                attestations.smoke_configuration(executor, f"{reg.host}/kaniko-nginx@sha256:{'0' * 64}"),
            )
            t3 = time.perf_counter()
            signer.close()
        images_bytes = sum(p.bytes_uploaded for p in published.values())
        print(f"images published: {images_bytes} bytes")
        print(f"sign (reference): {t1 - t0:.1f} s, {len(signed['signatures'])} signature(s)")
        for name, items, seconds in (
            ("attest (SBOM + provenance)", made, t2 - t1),
            ("test-result", tests, t3 - t2),
        ):
            by_type: dict[str, list[int]] = {}
            for item in items:
                by_type.setdefault(item.predicate_type, []).append(item.bytes)
            detail = ", ".join(f"{k}: {len(v)} x ~{sum(v) // len(v)} B" for k, v in sorted(by_type.items()))
            print(f"{name}: {seconds:.1f} s, {sum(i.bytes for i in items)} bytes ({detail})")
        trust = [settings.cache_dir / "sigstore" / "trust_config.json"]  # the local signer's one trust root
        cold = _settings(work / "cache-reproduce", fork_url, reg.host)
        for label in ("cold", "warm"):
            for candidate in reversed(trust):
                try:
                    t = time.perf_counter()
                    result = reproduce.run(
                        dataclasses.replace(cold, trust_config=candidate),
                        image=executor,
                        certificate_identity=localsigstore.LOCAL_IDENTITY,
                        certificate_oidc_issuer=localsigstore.LOCAL_ISSUER,
                    )
                except Exception as exc:  # noqa: BLE001 - another instance's trust config: try the next
                    last = exc
                    continue
                print(f"reproduce {label}: {time.perf_counter() - t:.1f} s, reproduced={result.reproduced}")
                break
            else:
                print(f"reproduce {label} failed: {last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
