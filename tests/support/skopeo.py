"""skopeo, an independent client, reads back what the tests pushed: raw manifests byte for byte, and
every blob of every platform (``skopeo copy --all`` checks each blob's digest)."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.oci import digests
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, parse
from tests.conftest import require_tool


@contextlib.contextmanager
def authfile(host: str = "", user: str | None = None, password: str | None = None) -> Iterator[list[str]]:
    """skopeo arguments for credentials: an auth file (0600) in a directory deleted afterwards, with no
    entry when anonymous. Always one of its own: without it skopeo reads $XDG_RUNTIME_DIR/containers/
    auth.json, or /run/containers/UID/auth.json where XDG_RUNTIME_DIR is unset (su, cron, CI jobs), and
    fails on "permission denied" there once rootful podman has made /run/containers (mode 0700)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.json"
        path.touch(mode=0o600)
        auths = {}
        if user is not None and password is not None:
            auths[host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        path.write_text(json.dumps({"auths": auths}))
        yield ["--authfile", str(path)]


def skopeo_raw(ref: str, user: str | None = None, password: str | None = None) -> bytes:
    skopeo = require_tool("skopeo", "an independent client reads back what was pushed")
    host = ref.split("/", 1)[0]
    with authfile(host, user, password) as auth:
        done = subprocess.run(
            [skopeo, "inspect", "--raw", "--tls-verify=false", *auth, f"docker://{ref}"],
            capture_output=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def skopeo_copy_all(ref: str, dest: Path, user: str | None = None, password: str | None = None) -> None:
    """Copy every platform of ``ref`` to an OCI layout: skopeo checks every blob's digest."""
    skopeo = require_tool("skopeo", "an independent client reads back what was pushed")
    host = ref.split("/", 1)[0]
    with authfile(host, user, password) as auth:
        done = subprocess.run(
            [skopeo, "copy", "--all", "--src-tls-verify=false", *auth, f"docker://{ref}", f"oci:{dest}:copy"],
            capture_output=True,
            check=False,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr.decode()


def check_pushed(
    layout: Layout, top: Descriptor, ref: str, user: str | None = None, pw: str | None = None
) -> None:
    """skopeo reads back the index and every platform manifest byte for byte, and all blobs verify."""
    raw = skopeo_raw(ref, user, pw)
    assert digests.of_bytes(raw) == top.digest
    assert raw == layout.read_blob(top.digest)
    index = parse(raw)
    assert isinstance(index, Index)
    repo = ref.rsplit(":", 1)[0] if "@" not in ref else ref.split("@", 1)[0]
    for child in index.manifests:
        assert skopeo_raw(f"{repo}@{child.digest}", user, pw) == layout.read_blob(child.digest)
    with tempfile.TemporaryDirectory() as out:
        skopeo_copy_all(ref, Path(out) / "copy", user, pw)
