"""Benchmark: the scheduled release's job graph on the real fork, job by job, as the workflow runs it.

Each job of `.github/workflows/release.yml` runs its own commands (tests/support/workflows.py) in a process,
a directory and an empty pipeline cache of its own (Go's build cache too: every job starts cold, as on a
new runner), against a local registry and a local Sigstore instance configured as a real one (a trust
config, an OIDC token for the jobs that may sign). Artifacts are handed over as directories. It prints
each job's wall time and the graph's: check + the slowest platform job + publish + the slowest shard job
+ release, i.e. what the fan-out takes when the runners of one stage run at once (runner start and the
install steps are not in it: the check's cold install is timed on its own).

Then, unless --no-up-to-date, the check again once the release is out: what a scheduled run costs when
there is nothing to do. With --one-machine it also runs `invoke release` on one machine (a cache and a
registry of its own) for the same release, side by side.

Usage: python tests/benchmarks/bench_fanout.py FORK_MIRROR [--platforms LIST] [--shards N]
       [--conformance full|quick] [--one-machine] [--no-up-to-date] [--cold-check]
FORK_MIRROR: a clone (or bare mirror) of github.com/chainguard-forks/kaniko; its newest release is built.
Debug is left out (its busybox is on Docker Hub). Run it on a quiet machine: the load average is printed.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from tests.support import workflows

VARIANTS = "executor,slim,warmer"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Graph:
    def __init__(
        self, root: Path, mirror: Path, registry: LocalRegistry, trust: Path, args: argparse.Namespace
    ):
        self.root, self.mirror, self.registry, self.trust, self.args = root, mirror, registry, trust, args
        self.answer: dict[str, str] = {}
        self.times: dict[str, float] = {}

    def env(self, where: Path) -> dict[str, str]:
        (where / "home").mkdir(parents=True)
        keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")
        return {
            **{k: v for k, v in os.environ.items() if k in keep},
            **self.answer,
            "HOME": str(where / "home"),
            "XDG_CACHE_HOME": str(where / "cache"),
            "INVOKE_PIPELINE_CACHE_DIR": str(where / "cache" / "kaniko-pipeline"),
            "INVOKE_PIPELINE_FORK_URL": str(self.mirror),
            "INVOKE_PIPELINE_PREFIX": self.registry.host,
            "INVOKE_PIPELINE_VARIANTS": VARIANTS,
            "INVOKE_PIPELINE_TRUST_CONFIG": str(self.trust),
            "RELEASE_PLATFORMS": self.args.platforms,
            "SHARDS": str(self.args.shards),
            "RELEASE_CONFORMANCE": self.args.conformance,
            "RELEASE_PREFIX": self.registry.host,
            "RELEASE_REF": "latest",
            "RELEASE_FORCE": "false",
            "CERTIFICATE_IDENTITY": localsigstore.LOCAL_IDENTITY,
            "CERTIFICATE_OIDC_ISSUER": localsigstore.LOCAL_ISSUER,
            "GITHUB_OUTPUT": str(where / "github-output"),
        }

    def job(
        self, name: str, label: str, inputs: tuple[Path, ...] = (), extra: dict[str, str] | None = None
    ) -> Path:
        where = self.root / label.replace("/", "-").replace(" ", "-")
        where.mkdir(parents=True)
        for artifact in inputs:
            shutil.copytree(artifact, where / artifact.name, dirs_exist_ok=True)
        env = {**self.env(where), **(extra or {})}
        if workflows.signs(name, "github"):
            env["SIGSTORE_ID_TOKEN"] = localsigstore.mint_identity_token(lifetime=3600)
        started = time.monotonic()
        ran = workflows.run(workflows.github_scripts(name), env, where, timeout=3600)
        seconds = time.monotonic() - started
        self.times[label] = seconds
        (where / "log").write_text(ran.stdout + ran.stderr)
        status = "ok" if ran.returncode == 0 else f"exit {ran.returncode}"
        print(f"{label:<28} {seconds:8.1f} s  {status:<8} (load {_load()})", flush=True)
        if ran.returncode != 0:
            print(
                f"  its output: {where / 'log'}; last lines:\n"
                + "\n".join((ran.stdout + ran.stderr).splitlines()[-15:])
            )
        return where


def _cold_check(graph: Graph) -> None:
    """The check job with its install: a fresh clone of the project, a venv, the locked packages."""
    where = graph.root / "check-cold"
    where.mkdir()
    env = {**graph.env(where), "PIP_NO_CACHE_DIR": "1"}
    install = workflows.github_job("check")["steps"]
    script = [str(s["run"]) for s in install if "run" in s]
    started = time.monotonic()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where / "p")], check=True)
    ran = subprocess.run(["bash", "-eo", "pipefail", "-c", "\n".join(script)], cwd=where / "p", env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    print(
        f"{'check, cold (clone+venv+lock)':<28} {seconds:8.1f} s  {'ok' if ran.returncode == 0 else 'failed'} (load {_load()})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mirror", type=Path)
    parser.add_argument("--platforms", default="linux/amd64,linux/arm64")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--conformance", default="full", choices=("full", "quick"))
    parser.add_argument("--one-machine", action="store_true")
    parser.add_argument("--no-up-to-date", action="store_true")
    parser.add_argument("--cold-check", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    print(f"workdir {root}; platforms {args.platforms}; {args.shards} shards; conformance {args.conformance}")
    registry = LocalRegistry(root / "registry").start()
    node = root / "node"
    with localsigstore.start(node, workdir=root / "sigstore") as sigstore:
        graph = Graph(root / "jobs", args.mirror.resolve(), registry, sigstore.trust_config, args)
        where = graph.job("check", "check")
        graph.answer = {
            k: v for k, v in workflows.answer(where / "github-output").items() if k.startswith("RELEASE_")
        }
        print(f"  the check's answer: {graph.answer}")
        if graph.answer.get("RELEASE_WORK") != "true":
            return 1
        records = []
        for platform in args.platforms.split(","):
            where = graph.job("platform", f"platform {platform}", extra={"PLATFORM": platform})
            records.append(where / "records")
        graph.job("publish", "publish", tuple(records))
        shards = []
        for part in range(1, args.shards + 1):
            where = graph.job("conformance", f"conformance {part}/{args.shards}", extra={"SHARD": str(part)})
            shards.append(where / "shards")
        graph.job("release", "release", tuple(shards))
        t = graph.times
        platforms = [v for k, v in t.items() if k.startswith("platform ")]
        tests = [v for k, v in t.items() if k.startswith("conformance ")]
        total = t["check"] + max(platforms) + t["publish"] + max(tests) + t["release"]
        print(f"{'fan-out (stages at once)':<28} {total:8.1f} s  = check + slowest platform job "
              f"{max(platforms):.1f} + publish + slowest shard {max(tests):.1f} + release")  # fmt: skip
        print(f"{'the same jobs one by one':<28} {sum(t.values()):8.1f} s")
        if not args.no_up_to_date:
            graph.answer = {}
            where = graph.job("check", "check, up to date")
            print(f"  the check's answer: {workflows.answer(where / 'github-output')}")
        if args.cold_check:
            _cold_check(graph)
        if args.one_machine:
            other = LocalRegistry(root / "registry-one").start()
            try:
                where = root / "one-machine"
                where.mkdir()
                env = {**graph.env(where), "INVOKE_PIPELINE_PREFIX": other.host,
                       "SIGSTORE_ID_TOKEN": localsigstore.mint_identity_token(lifetime=3600)}  # fmt: skip
                started = time.monotonic()
                ran = subprocess.run(
                    [sys.executable, "-m", "invoke", "--search-root", str(ROOT), "release", "--platforms",
                     args.platforms, "--conformance", args.conformance, "--certificate-identity",
                     localsigstore.LOCAL_IDENTITY, "--certificate-oidc-issuer", localsigstore.LOCAL_ISSUER],
                    cwd=where, env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                seconds = time.monotonic() - started
                (where / "log").write_text(ran.stdout + ran.stderr)
                print(
                    f"{'invoke release, one machine':<28} {seconds:8.1f} s  exit {ran.returncode} (load {_load()})"
                )
            finally:
                other.stop()
    registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
