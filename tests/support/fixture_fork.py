"""A small Go module laid out like the kaniko fork, in a temporary git repository, so the build
tests need no real fork: go.mod, cmd/executor, cmd/warmer, pkg/version, the three credential
helpers as vendored packages (vendor/modules.txt), deploy/Dockerfile in the fork's shape, and
files/nsswitch.conf. Also a fixture busybox image, from Debian's busybox-static, as an OCI layout.

From the command line, `python -m tests.support.fixture_fork DIR` makes all a release of it needs
(the fork with the fake executor, its pin, busybox) and prints how to run `invoke test-e2e` on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.image import layers
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, canonical_json
from pipeline.source.checkout import Checkout

MODULE = "example.com/fixture/kaniko"
TAG = "v1.2.3"
COMMIT_TIME = 1700000000  # 2023-11-14T22:13:20Z
HELPER_MODULES = {
    "github.com/GoogleCloudPlatform/docker-credential-gcr/v2": (
        "v2.1.22",
        "github.com/GoogleCloudPlatform/docker-credential-gcr/v2",
    ),
    "github.com/awslabs/amazon-ecr-credential-helper/ecr-login": (
        "v0.9.0",
        "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login",
    ),
    "github.com/chrismellard/docker-credential-acr-env": (
        "v0.0.0-20230304212654-82a0ddb27589",
        "github.com/chrismellard/docker-credential-acr-env",
    ),
}

DOCKERFILE = """\
# The fixture fork's deploy/Dockerfile: the stages and instructions pipeline/image/dockerfile.py models.
# The image stage never runs the builder or certs stages; it checks that the builder still compiles
# the binaries the pipeline compiles itself.
FROM golang@sha256:{zero} AS builder
RUN mkdir -p /kaniko/.docker
RUN go install github.com/GoogleCloudPlatform/docker-credential-gcr/v2
RUN go install github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login
RUN go install github.com/chrismellard/docker-credential-acr-env
RUN make out/executor out/warmer

FROM debian@sha256:{zero} AS certs

FROM busybox:musl@{busybox} AS busybox

FROM scratch AS kaniko-base-slim

RUN --mount=from=busybox,dst=/usr/ ["busybox", "sh", "-c", "mkdir -p /kaniko && chmod 777 /kaniko"]

COPY --from=certs /etc/ssl/certs/ca-certificates.crt /kaniko/ssl/certs/
COPY files/nsswitch.conf /etc/nsswitch.conf
ENV HOME=/root
ENV USER=root
ENV PATH=/usr/local/bin:/kaniko
ENV SSL_CERT_DIR=/kaniko/ssl/certs

FROM kaniko-base-slim AS kaniko-base

COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-gcr /kaniko/docker-credential-gcr
COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-ecr-login /kaniko/docker-credential-ecr-login
COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-acr-env /kaniko/docker-credential-acr-env

COPY --from=builder /kaniko/.docker /kaniko/.docker

ENV DOCKER_CONFIG=/kaniko/.docker/
ENV DOCKER_CREDENTIAL_GCR_CONFIG=/kaniko/.config/gcloud/docker_credential_gcr_config.json
WORKDIR /workspace

### FINAL STAGES ###

FROM kaniko-base AS kaniko-warmer

COPY --from=builder /src/out/warmer /kaniko/warmer

ENTRYPOINT ["/kaniko/warmer"]

FROM kaniko-base AS kaniko-executor

COPY --from=builder /src/out/executor /kaniko/executor

ENTRYPOINT ["/kaniko/executor"]

FROM kaniko-executor AS kaniko-debug

ENV PATH=/usr/local/bin:/kaniko:/busybox

COPY --from=builder /src/out/warmer /kaniko/warmer

COPY --from=busybox /bin /busybox
VOLUME /busybox

RUN ["/busybox/mkdir", "-p", "/bin"]
RUN ["/busybox/ln", "-s", "/busybox/sh", "/bin/sh"]

FROM kaniko-base-slim AS kaniko-slim

COPY --from=builder /src/out/executor /kaniko/executor

ENTRYPOINT ["/kaniko/executor"]
"""

NSSWITCH = "# fixture nsswitch.conf\npasswd: files\ngroup: files\nhosts: files dns\n"

VERSION_GO = """package version

var version = "unset"

// Version is the tag the binary was built from (set with -ldflags -X).
func Version() string { return version }
"""

EXECUTOR_GO = """package main

import (
	"fmt"
	"os"

	"MODULE_PATH/pkg/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Printf("Kaniko version :  %s\\n", version.Version())
		return
	}
	fmt.Println("fixture executor: args", os.Args[1:])
}
""".replace("MODULE_PATH", MODULE)

WARMER_GO = """package main

import (
	"fmt"
	"os"

	"MODULE_PATH/pkg/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--help" || os.Args[1] == "-h") {
		fmt.Println("Usage: warmer [flags] (fixture warmer", version.Version()+")")
		return
	}
	fmt.Println("fixture warmer")
}
""".replace("MODULE_PATH", MODULE)

HELPER_GO = """package main

import "fmt"

func main() { fmt.Println("fixture credential helper %s") }
"""

GO_MOD = """module %s

go 1.22

require (
%s
)
"""


def _git(path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "fixture",
        "GIT_AUTHOR_EMAIL": "fixture@example.com",
        "GIT_COMMITTER_NAME": "fixture",
        "GIT_COMMITTER_EMAIL": "fixture@example.com",
        "GIT_AUTHOR_DATE": f"@{COMMIT_TIME} +0000",
        "GIT_COMMITTER_DATE": f"@{COMMIT_TIME} +0000",
    }
    result = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip()


def write_tree(root: Path, busybox_digest: str) -> None:
    """The fork-shaped source tree (no git)."""
    files = {
        "go.mod": GO_MOD
        % (MODULE, "\n".join(f"\t{mod} {version}" for mod, (version, _) in HELPER_MODULES.items())),
        "pkg/version/version.go": VERSION_GO,
        "cmd/executor/main.go": EXECUTOR_GO,
        "cmd/warmer/main.go": WARMER_GO,
        "deploy/Dockerfile": DOCKERFILE.format(zero="0" * 64, busybox=busybox_digest),
        "files/nsswitch.conf": NSSWITCH,
    }
    modules_txt = []
    for mod, (version, package) in HELPER_MODULES.items():
        modules_txt += [f"# {mod} {version}", "## explicit; go 1.22", package]
        files[f"vendor/{package}/main.go"] = HELPER_GO % package.rsplit("/", 1)[-1]
    files["vendor/modules.txt"] = "\n".join(modules_txt) + "\n"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_fork(root: Path, busybox_digest: str, *, tag: str = TAG) -> Checkout:
    """A git repository at ``root`` with the fixture tree committed and tagged ``tag``."""
    root.mkdir(parents=True, exist_ok=True)
    write_tree(root, busybox_digest)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "fixture fork")
    _git(root, "tag", tag)
    return checkout_of(root, tag)


def checkout_of(root: Path, tag: str = TAG) -> Checkout:
    return Checkout(
        url=str(root),
        tag=tag,
        commit=_git(root, "rev-parse", "HEAD"),
        version=tag.lstrip("v"),
        commit_time=int(_git(root, "log", "-1", "--format=%ct")),
        module=MODULE,
        path=root,
    )


def commit_all(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message)


def busybox_binary() -> Path:
    """Debian's busybox-static binary."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("busybox")
    if found is None:
        raise FileNotFoundError("busybox-static is not installed")
    return Path(found)


def make_busybox_layout(root: Path, platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")) -> str:
    """An OCI layout at ``root`` holding a busybox image laid out like busybox:musl: /bin/busybox and a
    hard link per applet. Returns the index digest (what the fixture Dockerfile pins). Every platform
    gets the same (amd64) binary: good enough to check the layout, runnable on amd64 only."""
    binary = busybox_binary()
    applets = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries = [layers.directory("/bin", 0o755), layers.file("/bin/busybox", source=binary, mode=0o755)]
    entries += [layers.hardlink(f"/bin/{name}", "/bin/busybox") for name in applets if name != "busybox"]
    entries += [
        layers.directory("/etc", 0o755),
        layers.file("/etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
    ]
    layout = Layout.create(root)
    work = root.parent / (root.name + ".work")
    built = layers.build(entries, COMMIT_TIME, work / "layer.tar.gz")
    digest, size = layout.add_blob_file(built.path)
    shutil.rmtree(work)
    manifests = []
    for text in platforms:
        platform = Platform.parse(text)
        config = canonical_json(
            {
                "architecture": platform.architecture,
                "os": platform.os,
                "config": {"Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [built.diff_id]},
            }
        )
        config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config), len(config))
        manifest = Manifest(config=config_desc, layers=[Descriptor(mediatype.OCI_LAYER_GZIP, digest, size)])
        desc = layout.write_manifest(manifest)
        manifests.append(Descriptor(desc.media_type, desc.digest, desc.size, platform=platform))
    index = layout.write_manifest(Index(manifests=manifests))
    layout.set_ref("musl", index)
    return index.digest


def make_release_fork(root: Path, platforms: tuple[str, ...] = ("linux/amd64",)) -> dict[str, str]:
    """Everything `invoke test-e2e` (or a release) needs to run on the fixture fork, under ``root``: the fork
    with the fake executor as cmd/executor, tagged (``fork_url``), a pin.json naming that tag and commit
    (``fork_dir``, for INVOKE_PIPELINE_FORK_DIR) and the busybox layout that debug takes (``busybox``)."""
    from tests.support import fakeexecutor

    busybox = root / "busybox"
    digest = make_busybox_layout(busybox, platforms=platforms)
    fork = root / "fork"
    make_fork(fork, digest)
    fakeexecutor.install_into_fork(fork)
    _git(fork, "tag", "-f", TAG)
    pin = root / "pin"
    pin.mkdir()
    commit = _git(fork, "rev-parse", "HEAD")
    (pin / "pin.json").write_text(json.dumps({"url": str(fork), "tag": TAG, "commit": commit}) + "\n")
    return {"fork_url": str(fork), "fork_dir": str(pin), "busybox": str(busybox)}


def main(argv: list[str]) -> int:
    """``python -m tests.support.fixture_fork DIR``: make the fixture fork under DIR (which must not
    exist yet) and print what to run it with, as one JSON object on stdout."""
    if len(argv) != 2 or Path(argv[1]).exists():
        sys.stderr.write("usage: python -m tests.support.fixture_fork DIR  (DIR must not exist yet)\n")
        return 2
    root = Path(argv[1]).resolve()
    root.mkdir(parents=True)
    made = make_release_fork(root)
    sys.stderr.write(
        f"INVOKE_PIPELINE_FORK_DIR={made['fork_dir']} invoke test-e2e --fork-url {made['fork_url']} "
        f"--busybox {made['busybox']}\n"
    )
    sys.stdout.write(json.dumps(made) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
