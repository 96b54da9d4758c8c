"""Rootless first: what an ordinary user runs gives what root's run gives.

- the same release, run as root and as an ordinary user (rootless podman, mmdebstrap in unshare mode),
  publishes the same image digests and makes the same nginx base;
- `invoke setup --user NAME` gives a user without subuid/subgid ranges its ranges, and says so;
- a clone from a repository the user cannot read shows git's own "Permission denied";
- `invoke test-e2e` takes --base-image and --registry-mirror, and passes them to kaniko; its default
  conformance runs every quick case, and buildah builds each one (as an ordinary user too: .ci/run's
  rootless run).

The root-and-user tests need root and the user .ci/run creates (KANIKO_PIPELINE_ROOTLESS_USER).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.services import nginxbase
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.stages.conformance import cases
from tests.conftest import require_tool
from tests.support import fakeexecutor, fixture_fork
from tests.support.rootless import clean_env, give, needs_root, rootless_user, run_as, shared_dir
from tests.support.sigstore_fixtures import seed_cache

pytestmark = pytest.mark.slow


@dataclass
class Fork:
    path: Path
    fork_dir: Path  # holds pin.json
    busybox: Path


@pytest.fixture(scope="module")
def fork() -> Iterator[Fork]:
    """The fixture fork (its executor is the fake executor), in a directory every user can read."""
    require_tool("go", "the release compiles the fixture fork")
    require_tool("git", "the fixture fork is a git repository")
    with shared_dir("kp-rootless-fork-") as root:
        busybox = root / "busybox"
        digest = fixture_fork.make_busybox_layout(busybox, platforms=("linux/amd64",))
        path = root / "fork"
        fixture_fork.make_fork(path, digest)
        fakeexecutor.install_into_fork(path)
        subprocess.run(
            ["git", "-C", str(path), "tag", "-f", fixture_fork.TAG], check=True, capture_output=True
        )
        commit = fixture_fork.checkout_of(path).commit
        fork_dir = root / "pin"
        fork_dir.mkdir()
        (fork_dir / "pin.json").write_text(
            json.dumps({"url": str(path), "tag": fixture_fork.TAG, "commit": commit})
        )
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                target = Path(dirpath) / name
                if not target.is_symlink():
                    os.chmod(target, os.stat(target).st_mode | 0o444 | (0o111 if target.is_dir() else 0))
        yield Fork(path, fork_dir, busybox)


def _pipeline_env(cache: Path, home: Path, fork: Fork, prefix: str) -> dict[str, str]:
    return clean_env(
        home,
        {
            "INVOKE_PIPELINE_CACHE_DIR": str(cache),
            "INVOKE_PIPELINE_FORK_DIR": str(fork.fork_dir),
            "INVOKE_PIPELINE_PLATFORMS": "linux/amd64",
            "INVOKE_PIPELINE_VARIANTS": "executor,debug,slim,warmer",
            "INVOKE_PIPELINE_PREFIX": prefix,
        },
    )


def _release_as(
    user: pwd.struct_passwd | None,
    work: Path,
    fork: Fork,
    prefix: str,
    smoke_image: str,
    node: Path,
    go_cache: Path,
    nginx_base: Path | None,
) -> dict[str, Any]:
    """One release of the fixture fork to ``prefix``, run in its own process as ``user`` (None: root).
    Its cache starts with a copy of the session's Go build cache (content-keyed: it changes no binary,
    only how much the compile of Go's standard library costs), and with ``nginx_base`` (a cache's
    nginx-base directory) when given, instead of making the base itself."""
    cache, home = work / "cache", work / "home"
    for path in (cache, home):
        path.mkdir()
    seed_cache(node, cache)
    shutil.copytree(go_cache, cache / "go-build", symlinks=True, ignore_dangling_symlinks=True)
    if nginx_base is not None:
        (cache / "nginx-base").symlink_to(nginx_base)
    for link in (cache / "node").iterdir():  # a copy the user can read, not links into root's temp dir
        target = link.resolve()
        link.unlink()
        shutil.copytree(target, link, symlinks=True)
    if user is not None:
        give(work, user)
    spec = {
        "settings": {
            "cache_dir": str(cache),
            "fork_dir": str(fork.fork_dir),
            "fork_url": str(fork.path),
            "prefix": prefix,
            "platforms": "linux/amd64",
            "variants": "executor,debug,slim,warmer",
        },
        "busybox": str(fork.busybox),
        "smoke_image": smoke_image,
        "report_dir": str(work / "reports"),
    }
    env = clean_env(home)
    result = run_as(user, [sys.executable, "-m", "tests.support.run_release", json.dumps(spec)], env)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, (
        f"release as {user.pw_name if user else 'root'}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    report: dict[str, Any] = json.loads(lines[-1])
    return report


@needs_root
def test_rootful_and_rootless_releases_give_the_same_digests(
    fork: Fork,
    registry: LocalRegistry,
    nginx_image: str,
    podman: Podman,
    node_cache: Path,
    go_build_cache: Path,
    nginx_base: nginxbase.BaseImage,
) -> None:
    user = rootless_user()
    require_tool("mmdebstrap", "the rootless run makes its own nginx base without root")
    smoke_image = f"{registry.host}/test/nginx:smoke"
    podman.command(
        ["push", "--tls-verify=false", nginx_image, f"docker://{smoke_image}"], what="pushing the smoke image"
    )
    # the two releases run at once, each in its own process, cache and podman storage; root's takes the
    # session's nginx base (made by mmdebstrap as root), the user's one the user made without root: in the
    # user's own test cache when .ci/run names it (its rootless test run makes the same base at the same
    # time: one of the two makes it, the other takes it), else in the user's release itself
    rootful_base = nginx_base.store
    with (
        shared_dir("kp-rootful-") as rootful_work,
        shared_dir("kp-rootless-", owner=user) as rootless_work,
        ThreadPoolExecutor(2) as pool,
    ):
        rootful_run = pool.submit(
            _release_as,
            None,
            rootful_work,
            fork,
            f"{registry.host}/rootful",
            smoke_image,
            node_cache,
            go_build_cache,
            rootful_base,
        )

        def rootless_release() -> dict[str, Any]:
            base = _user_base(user)
            return _release_as(
                user,
                rootless_work,
                fork,
                f"{registry.host}/rootless",
                smoke_image,
                node_cache,
                go_build_cache,
                base,
            )

        rootless_run = pool.submit(rootless_release)
        rootful, rootless = rootful_run.result(), rootless_run.result()
        made = rootless_work / "cache" / "nginx-base"
        if os.environ.get(USER_TEST_CACHE_ENV):  # the base the user made in its test cache
            assert made.is_symlink() and made.resolve().is_relative_to(Path(os.environ[USER_TEST_CACHE_ENV]))
        else:  # the user's release made its base itself
            assert made.is_dir() and not made.is_symlink()

    assert rootful["status"] == rootless["status"] == "released"
    digests = {variant: image["digest"] for variant, image in rootful["images"].items()}
    assert sorted(digests) == ["debug", "executor", "slim", "warmer"]
    assert {variant: image["digest"] for variant, image in rootless["images"].items()} == digests
    # the nginx base: made by mmdebstrap as root, and again without root, to the same digest and recipe
    assert rootful["base"] == rootless["base"]
    assert rootless["base"]["tool"] == "mmdebstrap --mode=unshare"
    # kaniko ran rootless in the user's run, and pushed the same test image
    assert rootful["image"].split("@")[1] == rootless["image"].split("@")[1]
    assert [s["status"] for s in rootless["stages"] if s["name"] in ("build-image", "smoke")] == ["ok", "ok"]


# .ci/run names the ordinary user's test cache (its rootless test run's shared test cache) here.
USER_TEST_CACHE_ENV = "KANIKO_PIPELINE_ROOTLESS_TEST_CACHE"


def _user_base(user: pwd.struct_passwd) -> Path | None:
    """The nginx base the user made with mmdebstrap --mode=unshare in its own test cache, made now as the
    user if not there yet (tests/support/make_base.py); None when no such cache is named."""
    shared = os.environ.get(USER_TEST_CACHE_ENV, "").strip()
    if not shared:
        return None
    made = run_as(
        user, [sys.executable, "-m", "tests.support.make_base", shared], clean_env(Path(user.pw_dir))
    )
    assert made.returncode == 0, f"the base as {user.pw_name}: {made.stderr[-3000:]}"
    return Path(made.stdout.strip().splitlines()[-1])


def _doctor(name: str, task: str = "doctor") -> tuple[int, dict[str, Any]]:
    env = clean_env(Path(pwd.getpwnam("root").pw_dir))
    result = run_as(None, [sys.executable, "-m", "invoke", task, "--user", name, "--json"], env, timeout=300)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="`invoke setup --user NAME` changes /etc/subuid: it needs root (.ci/run's root run)",
)
def test_setup_gives_a_user_without_subuid_ranges_its_ranges_and_says_so() -> None:
    require_tool("podman", "the doctor checks podman's storage for the user")
    name = f"kp-nosub-{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--create-home", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name], check=True
    )
    try:
        code, before = _doctor(name)
        assert code == 1 and not before["ok"] and before["rootless"]
        failed = {check["name"]: check for check in before["checks"] if not check["ok"]}
        assert set(failed) >= {"subuid", "subgid"}
        assert failed["subuid"]["detail"].startswith(f"no range for {name} in /etc/subuid")
        assert failed["subuid"]["fix"].startswith("usermod --add-subuids ")

        code, after = _doctor(name, "setup")
        assert code == 0, after
        assert after["ok"] and all(check["ok"] for check in after["checks"])
        changed = " | ".join(after["changed"])
        assert f"gave {name} subuid range" in changed and f"gave {name} subgid range" in changed
        lines = [line for line in Path("/etc/subuid").read_text().splitlines() if line.startswith(name + ":")]
        assert len(lines) == 1 and lines[0].endswith(":65536")
        code, again = _doctor(name, "setup")
        assert code == 0 and again["changed"] == []  # nothing left to fix: nothing changed
    finally:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def _mirror(root: Path) -> Path:
    """A bare repository with one tagged commit in one pack, readable by everyone."""
    repo = root / "fork.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(repo)], check=True)
    work = root / "work"
    subprocess.run(["git", "init", "--quiet", str(work)], check=True)
    (work / "README").write_text("fork\n")
    (work / "go.mod").write_text("module example.com/fork\n\ngo 1.22\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "one"], check=True)
    subprocess.run([*git, "tag", "v1.0.0"], check=True)
    subprocess.run([*git, "push", "--quiet", str(repo), "HEAD:refs/heads/main", "v1.0.0"], check=True)
    subprocess.run(["git", "-C", str(repo), "repack", "-a", "-d", "--quiet"], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    return repo


def _fork_as(user: pwd.struct_passwd | None, repo: Path) -> subprocess.CompletedProcess[str]:
    with shared_dir("kp-clone-", owner=user) as home:
        env = clean_env(home, {"INVOKE_PIPELINE_CACHE_DIR": str(home / "cache")})
        argv = [sys.executable, "-m", "invoke", "fork", "--url", str(repo), "--ref", "v1.0.0"]
        return run_as(user, argv, env, timeout=120)


def test_a_clone_the_user_cannot_read_shows_gits_permission_denied() -> None:
    """As root the clone runs as the ordinary user; as an ordinary user, as ourselves."""
    user = rootless_user() if os.geteuid() == 0 else None
    with shared_dir("kp-unreadable-") as root:
        repo = _mirror(root)
        for pack in (repo / "objects" / "pack").glob("*.pack"):
            os.chmod(pack, 0o600 if user is not None else 0)  # root's own, or nobody's
        result = _fork_as(user, repo)
    assert result.returncode == 1, result.stderr
    # copying fails, and so does reading the borrowed objects: either way git's own words are shown
    assert f"could not clone the fork from {repo}" in result.stderr or (
        f"could not fetch the fork from {repo}" in result.stderr
    )
    assert "Permission denied" in result.stderr  # git's own words, not only its exit status
    assert "Traceback" not in result.stderr


@needs_root
def test_a_mirror_root_made_with_files_only_root_reads_still_clones() -> None:
    """A partial clone's .promisor is 0600: git cannot copy it, so the fork borrows the mirror's objects."""
    user = rootless_user()
    with shared_dir("kp-mirror-") as root:
        repo = _mirror(root)
        for pack in (repo / "objects" / "pack").glob("*.pack"):
            promisor = pack.with_suffix(".promisor")
            promisor.write_text("")
            os.chmod(promisor, 0o600)
        result = _fork_as(user, repo)
    assert result.returncode == 0, result.stderr
    assert "borrowing its objects (git clone --shared)" in result.stderr
    assert result.stdout.startswith("v1.0.0 (")


def test_test_e2e_takes_base_image_and_registry_mirror(
    fork: Fork,
    registry: LocalRegistry,
    nginx_base: nginxbase.BaseImage,
    node_cache: Path,
    go_build_cache: Path,
    tmp_path: Path,
) -> None:
    """The fake executor reports its argv: kaniko got the base and the mirror given, and the release made no
    base of its own. (The fake pushes a trivial image, so smoke then fails: that is checked too.)"""
    with Client(credentials=Credentials.anonymous()) as client:
        pushed = nginxbase.publish(nginx_base, client, registry.host)
    base = nginxbase.docker_hub_name(pushed.digest)
    # as whoever runs the suite: .ci/run runs it as root and as its ordinary user
    with shared_dir("kp-e2e-") as work:
        cache, home = work / "cache", work / "home"
        home.mkdir()
        seed_cache(node_cache, cache)
        shutil.copytree(go_build_cache, cache / "go-build", symlinks=True)  # content-keyed, as above
        env = _pipeline_env(cache, home, fork, "")
        argv = [sys.executable, "-m", "invoke", "test-e2e", "--fork-url", str(fork.path), "--busybox"]
        argv += [str(fork.busybox), "--base-image", base, "--registry-mirror", registry.host, "--json"]
        result = run_as(None, argv, env)
        report = cache / "runs" / "e2e" / "release.json"
        conformance = json.loads(report.read_text())["conformance"] if report.is_file() else {}
    assert result.returncode == 1, result.stderr[-3000:]
    # its default conformance ran, rootless when the suite runs as an ordinary user: every quick case with every
    # building variant; the fake builds none of them, and buildah, beside it, built every one
    quick = {case.name for case in cases.load(quick=True)}
    ran = {(c["variant"], c["name"]) for c in conformance.get("cases", [])}
    assert ran >= {(variant, name) for variant in ("executor", "slim", "debug") for name in quick}, ran

    def troubles(word: str) -> list[str]:
        return [
            f"{c['variant']} {c['name']}: {c['reason']}" for c in conformance["cases"] if word in c["reason"]
        ]

    assert not troubles("buildah could not build"), "\n".join(troubles("buildah could not build"))
    reports = fakeexecutor.reports(result.stderr)
    assert reports, result.stderr[-3000:]
    kaniko_argv = reports[-1]["argv"]
    assert f"--build-arg=BASE_IMAGE={base}" in kaniko_argv
    assert f"--registry-mirror={registry.host}" in kaniko_argv
    # the executor image stays while conformance uses it, whatever the parallel suite's other releases of the
    # same reproducible executor do (issue 20, item 3; tests/integration/test_image_leases.py)
    assert not troubles("image not known"), "\n".join(troubles("image not known"))
    assert reports[-1]["mirror_status"] == 200  # the fake reached the mirror from inside the container
    assert "== nginx-base" not in result.stderr  # given a base, the release makes none
    assert "== smoke" in result.stderr and "error:" in result.stderr
