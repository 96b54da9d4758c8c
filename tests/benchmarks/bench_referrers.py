"""Benchmark: `invoke verify` and the release's check against a digest crowded with referrers.

A fresh distribution registry holds a small image signed by the local Sigstore instance, and attached
to it 10,000 junk referrers, a 1 GiB "bundle" whose descriptor says so and one whose descriptor says
2,000 bytes for the same blob (tests/support/crowded.py). Prints, for `invoke verify --image
REPO@DIGEST` and for the release's check (``inspect_registry``, tests/support/release_check.py), each
in a process of its own: wall time, peak resident memory of that process tree, and the manifests and
blobs it GETs (counted by a proxy in front of the registry).

Run from the project root:  python tests/benchmarks/bench_referrers.py [--referrers 10000] [--gib 1]
(XDG_CACHE_HOME: where the local Sigstore instance's node packages are cached.) Nothing here asserts
timings: it prints figures.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import config
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import identity, trust
from pipeline.stages import sign
from tests.support.crowded import crowd
from tests.support.faultproxy import FaultProxy
from tests.support.layouts import build_image
from tests.support.peak import Measured, measure


def _line(name: str, run: Measured, proxy: FaultProxy) -> str:
    manifests = proxy.count("GET", r"/manifests/")
    blobs = proxy.count("GET", r"/blobs/sha256:")
    return (
        f"{name:<22} exit {run.returncode}  {run.seconds:7.1f} s  peak {run.peak_mib:7.1f} MiB  "
        f"GET manifests {manifests:6d}  GET blobs {blobs:6d}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrers", type=int, default=10_000)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    cache = config.Settings.load(dict(config.DEFAULTS)).cache_dir
    with tempfile.TemporaryDirectory(prefix="bench-referrers-") as tmp:
        work = Path(tmp)
        signer = localsigstore.start(cache, workdir=work / "sigstore")
        registry = LocalRegistry(work / "registry").start()
        proxy = FaultProxy(registry.url).start()
        try:
            repo = Reference.parse(f"{registry.host}/team/kaniko-executor:v1.0.0")
            started = time.monotonic()
            with Client(credentials=Credentials.anonymous()) as client:
                layout, top = build_image(work / "layout")
                client.push_layout(layout, top, repo)
                token = identity.parse(localsigstore.mint_identity_token(), "bench")
                target = sign.Target("executor", repo, top.digest)
                sign.sign([target], client=client, config=trust.load(signer.trust_config), token=token)
                crowd(
                    client,
                    repo,
                    top,
                    count=args.referrers,
                    big=int(args.gib * (1 << 30)),
                    storage=registry.storage,
                )
            print(
                f"setup: {args.referrers} referrers and a {args.gib:g} GiB bundle attached to {top.digest} "
                f"in {time.monotonic() - started:.0f} s"
            )
            who = [localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER]
            env = {**os.environ, "INVOKE_PIPELINE_CACHE_DIR": str(work / "cache")}
            proxy.reset_counts()
            verify = measure(
                [sys.executable, "-m", "invoke", "verify", "--image",
                 f"{proxy.host}/team/kaniko-executor@{top.digest}", "--certificate-identity", who[0],
                 "--certificate-oidc-issuer", who[1], "--trust-config", str(signer.trust_config), "--json"],
                env=env, cwd=str(ROOT), timeout=3600,
            )  # fmt: skip
            print(_line("invoke verify", verify, proxy))
            if verify.returncode == 0:
                print(f"  verified: {json.loads(verify.stdout)['verified']}")
            proxy.reset_counts()
            check = measure(
                [sys.executable, "-m", "tests.support.release_check", f"{proxy.host}/team", "1.0.0",
                 str(signer.trust_config), *who],
                env=env, cwd=str(ROOT), timeout=3600,
            )  # fmt: skip
            print(_line("release check", check, proxy))
            if check.returncode == 0:
                state = json.loads(check.stdout)
                print(f"  signed: {state['signed']}, tested: {state['tested']}")
        finally:
            proxy.stop()
            registry.stop()
            signer.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
