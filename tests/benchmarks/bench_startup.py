"""Benchmark: start-up and a whole `invoke publish`, measured as whole processes.

Prints, with the load average before each part (other work on the machine skews every figure):
1. the wall time of `invoke --list` and of `invoke publish --help` (median of --rounds runs, with the
   CPU time the process used, which load skews less), and of
   `python -c "import pipeline.registry.client, pipeline.stages.publish"` with the slowest imports
   `python -X importtime` reports for it;
2. for each task, the CPU time of importing tasks.py and the modules the task imports when it runs
   (what delays its first output), and the whole-process time of tasks that stop at their first
   message (no run record in an empty cache, a refused option);
3. a whole `invoke publish --layout L --prefix HOST/bench` process of a four-variant layout (executor,
   debug, slim, warmer; ~34 MB of blobs) to a fresh distribution registry on 127.0.0.1, side by side
   with four `skopeo copy --all` processes of the same images to another fresh registry, alternating
   which goes first, their medians and ratio (goal: at most 1.0).

`--root DIR` runs another checkout's tasks.py and pipeline (for a before/after comparison: e.g.
`git worktree add /tmp/before COMMIT`); its modules are imported by path, whatever the layout.

Run from the project root:  python tests/benchmarks/bench_startup.py [--rounds 5] [--mb 34] [--root DIR]
Nothing here asserts timings: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
from pipeline.services.distribution import LocalRegistry  # noqa: E402
from tests.support.layouts import build_layout  # noqa: E402

VARIANTS = ("executor", "debug", "slim", "warmer")
PLATFORMS = ("linux/amd64", "linux/arm64")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _env(root: Path, work: Path) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE off: byte-code cached, as on a user's machine (else every run compiles)
    drop = ("DOCKER_HUB_", "INVOKE_PIPELINE_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = str(root)
    env["INVOKE_PIPELINE_CACHE_DIR"] = str(work / "cache")
    env["DOCKER_CONFIG"] = str(work / "docker-config")
    return env


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    return _timed_cpu(args, cwd=cwd, env=env)[0]


def _timed_cpu(args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, _cpu() - cpu


def _median(args: list[str], rounds: int, *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    runs = [_timed_cpu(args, cwd=cwd, env=env) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


# What each task imports when it runs: (module in this layout, module before the stages/ layout).
TASK_MODULES: dict[str, list[tuple[str, str]]] = {
    "fork": [("pipeline.stages.fork", "pipeline.fork"), ("pipeline.source.pinfile", "pipeline.pin")],
    "build": [("pipeline.stages.build", "pipeline.build"), ("pipeline.source.checkout", "pipeline.fork")],
    "publish": [("pipeline.stages.publish", "pipeline.publish")],
    "sign": [("pipeline.stages.sign", "pipeline.sign")],
    "verify": [
        ("pipeline.stages.verify_images", "pipeline.sign"),
        ("pipeline.stages.attest", "pipeline.attest"),
    ],
    "reproduce": [("pipeline.stages.reproduce", "pipeline.reproduce")],
    "build-image": [("pipeline.stages.build_image", "pipeline.kaniko")],
    "smoke": [("pipeline.stages.smoke", "pipeline.smoke")],
    "conformance": [("pipeline.stages.conformance.stage", "pipeline.conformance.stage")],
    "render": [("pipeline.stages.render", "pipeline.render")],
    "registry.up": [("pipeline.services.distribution", "pipeline.registry.local")],
    "release": [("pipeline.release", "pipeline.release")],
}


# Tasks that stop at their first output with an empty cache (no run record, a refused option): how
# long a user waits for it.
FIRST_OUTPUT = (
    ["sign"],
    ["verify"],
    ["build"],
    ["smoke"],
    ["conformance"],
    ["render", "--target", "k8s-pod"],
    ["release", "--prefix", "x.io/a", "--prefix", "x.io/a"],
)


def _until_exit(args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of a process that must fail (with its message)."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode == 0 or "Traceback" in done.stderr:
        raise SystemExit(f"{' '.join(args)} was to stop with a message:\n{done.stderr}")
    return time.perf_counter() - started, _cpu() - cpu


def _module(root: Path, names: tuple[str, str]) -> str:
    path = root.joinpath(*names[0].split("."))
    return names[0] if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() else names[1]


def task_imports(root: Path, work: Path, rounds: int) -> None:
    env = _env(root, work)
    print(f"load average {_load()}")
    cells = []
    for name, modules in TASK_MODULES.items():
        statement = "import tasks, " + ", ".join(_module(root, m) for m in modules)
        seconds, cpu = _median([sys.executable, "-c", statement], rounds, cwd=root, env=env)
        cells.append(f"{name} {cpu * 1000:.0f}")
    print(f"CPU ms to import tasks.py and what the task imports when it runs (median of {rounds}):")
    print("  " + ", ".join(cells))
    cells = []
    for args in FIRST_OUTPUT:
        runs = [
            _until_exit([sys.executable, "-m", "invoke", *args], cwd=root, env=env) for _ in range(rounds)
        ]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        cells.append(f"{args[0]} {wall:.2f} s ({cpu:.2f} CPU)")
    print(f"a task stopping at its first message, e.g. no run record (median of {rounds}):")
    print("  " + ", ".join(cells))


def _publish_module(root: Path) -> str:
    return (
        "pipeline.stages.publish"
        if (root / "pipeline" / "stages" / "publish.py").is_file()
        else "pipeline.publish"
    )


def _slowest_imports(statement: str, *, cwd: Path, env: dict[str, str], count: int = 8) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if found and len(found.group(3)) <= 3:  # top-level imports and their direct children
            rows.append((int(found.group(2)), found.group(4)))
    rows.sort(reverse=True)
    return [f"{name} {micros / 1000:.0f} ms" for micros, name in rows[:count]]


def startup(root: Path, work: Path, rounds: int) -> None:
    env = _env(root, work)
    invoke = [sys.executable, "-m", "invoke"]
    print(f"load average {_load()}")
    listing, listing_cpu = _median([*invoke, "--list"], rounds, cwd=root, env=env)
    helping, helping_cpu = _median([*invoke, "publish", "--help"], rounds, cwd=root, env=env)
    statement = f"import pipeline.registry.client, {_publish_module(root)}"
    importing, importing_cpu = _median([sys.executable, "-c", statement], rounds, cwd=root, env=env)
    bare, bare_cpu = _median([sys.executable, "-c", "pass"], rounds, cwd=root, env=env)
    print(
        f"`invoke --list`: {listing:.3f} s ({listing_cpu:.3f} s CPU); `invoke publish --help`: "
        f"{helping:.3f} s ({helping_cpu:.3f} s CPU)  (median of {rounds})"
    )
    print(
        f'`python -c "{statement}"`: {importing:.3f} s ({importing_cpu:.3f} s CPU); a bare '
        f"`python -c pass`: {bare:.3f} s ({bare_cpu:.3f} s CPU)"
    )
    print("  slowest imports: " + ", ".join(_slowest_imports(statement, cwd=root, env=env)))


def _skopeo(skopeo: str, layout: Path, host: str) -> list[list[str]]:
    repository = {"executor": "kaniko-executor", "debug": "kaniko-executor", "slim": "kaniko-executor"}
    return [
        [
            skopeo,
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}:{variant}",
            f"docker://{host}/bench/{repository.get(variant, 'kaniko-warmer')}:v1.25.16-{variant}",
        ]
        for variant in VARIANTS
    ]


def publish(root: Path, work: Path, rounds: int, mb: float) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None or shutil.which("docker-registry") is None:
        raise SystemExit("needs skopeo and docker-registry: run `invoke setup`")
    per_layer = int(mb * 1024 * 1024 / len(VARIANTS) / len(PLATFORMS))
    sizes = [per_layer * 70 // 100, per_layer * 25 // 100, per_layer * 5 // 100]
    layout, images = build_layout(work / "layout", variants=VARIANTS, layer_sizes=sizes, platforms=PLATFORMS)
    blobs = {
        d.digest: d.size
        for top in images.values()
        for d in layout.walk(top)
        if d.media_type not in ALL_MANIFEST_TYPES
    }
    print(
        f"layout: {len(VARIANTS)} variants x {len(PLATFORMS)} platforms, {sum(blobs.values()) / 1e6:.1f} MB of blobs"
    )
    env = _env(root, work)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for i in range(rounds):
        load = _load()
        with LocalRegistry(work / f"reg-i{i}") as a, LocalRegistry(work / f"reg-s{i}") as b:
            order = ("invoke", "skopeo") if i % 2 == 0 else ("skopeo", "invoke")
            for who in order:
                if who == "invoke":
                    args = [sys.executable, "-m", "invoke", "publish", "--layout", str(layout.root)]
                    ours.append(
                        _timed_cpu([*args, "--prefix", f"{a.host}/bench", "--json"], cwd=root, env=env)
                    )
                else:
                    cpu, started = _cpu(), time.perf_counter()
                    for command in _skopeo(skopeo, layout.root, b.host):
                        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                    theirs.append((time.perf_counter() - started, _cpu() - cpu))
        print(
            f"round {i + 1}: invoke publish {ours[-1][0]:.2f} s ({ours[-1][1]:.2f} s CPU), skopeo copy x4 "
            f"{theirs[-1][0]:.2f} s ({theirs[-1][1]:.2f} s CPU)  (load {load})"
        )
    mine, skopeos = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in theirs)
    mine_cpu, skopeos_cpu = statistics.median(r[1] for r in ours), statistics.median(r[1] for r in theirs)
    print(
        f"whole processes, median of {rounds}: invoke publish {mine:.2f} s ({mine_cpu:.2f} s CPU), "
        f"skopeo copy --all x4 {skopeos:.2f} s ({skopeos_cpu:.2f} s CPU), ratio {mine / skopeos:.2f} "
        f"(CPU {mine_cpu / skopeos_cpu:.2f})  [goal <= 1.0]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=float, default=34.0, help="megabytes of layers in the whole layout")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose tasks.py to run")
    parser.add_argument("--only", choices=("startup", "tasks", "publish"), help="run one part only")
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"checkout: {root}")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        if args.only in (None, "startup"):
            startup(root, work, args.rounds)
        if args.only in (None, "tasks"):
            task_imports(root, work, args.rounds)
        if args.only in (None, "publish"):
            publish(root, work, args.rounds, args.mb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
