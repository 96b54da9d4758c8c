"""Issue 15 item 5: a credential in the fork URL is never written or shown.

The fixture fork is served over real git HTTP (the dumb protocol, from a bare clone) by a server that
demands Basic credentials, so the token in ``http://user:TOKEN@host/fork.git`` must really reach git
(through GIT_ASKPASS). Then fork, build, publish and a release dry run run as the CLI runs them, and
every output, every file they leave (cache, cached clone, run record, report, OCI layout) and every
blob the registry stores is searched for the token, plain and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from pipeline.services.distribution import LocalRegistry
from tests.conftest import require_tool
from tests.support import fixture_fork
from tests.support.cli import run_invoke
from tests.support.httpserver import LoopbackServer

USER = "forkuser"
TOKEN = "ghp_forkSecret0123456789abcdefXYZ"
NEEDLES = (TOKEN, base64.b64encode(f"{USER}:{TOKEN}".encode()).decode(), f"{USER}:{TOKEN}")


class GitHttp(LoopbackServer):
    """git's dumb HTTP protocol from ``root``, behind Basic auth (401 without the right credentials)."""

    name = "git-http"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.authorized = 0

    def handler(self) -> type[SimpleHTTPRequestHandler]:
        server = self
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server.authorized += 1
                super().do_GET()

        return Handler


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GitHttp, str, Path]]:
    require_tool("git", "the fork is a git repository")
    busybox = tmp_path / "busybox"
    digest = fixture_fork.make_busybox_layout(busybox, platforms=("linux/amd64",))
    checkout = fixture_fork.make_fork(tmp_path / "fork", digest)
    bare = tmp_path / "srv" / "fork.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(checkout.path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    fork_dir = tmp_path / "forkdir"
    fork_dir.mkdir()
    server = GitHttp(tmp_path / "srv").start()
    public = f"http://{server.host}/fork.git"
    (fork_dir / "pin.json").write_text(
        json.dumps({"url": public, "tag": checkout.tag, "commit": checkout.commit})
    )
    try:
        yield server, f"http://{USER}:{TOKEN}@{server.host}/fork.git", fork_dir
    finally:
        server.stop()


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


@pytest.mark.slow  # fork, a build, publish and two releases, each an invoke process
def test_a_token_in_the_fork_url_appears_nowhere(
    served: tuple[GitHttp, str, Path], registry: LocalRegistry, go_build_cache: Path, tmp_path: Path
) -> None:
    server, secret_url, fork_dir = served
    cache = tmp_path / "cache"
    # Go's standard library comes compiled (Go's cache is content-keyed); a copy, so the files scanned
    # below include what the build adds to it
    shutil.copytree(go_build_cache, cache / "go-build", symlinks=True)
    reports = tmp_path / "reports"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_", "KANIKO_"))
    }
    env.update({"INVOKE_PIPELINE_FORK_DIR": str(fork_dir), "DOCKER_CONFIG": str(tmp_path / "docker")})
    # The user's git stores what it is given (issue 21 item 9): the pipeline's git calls must not give it.
    stored = tmp_path / "git-credentials"
    (tmp_path / "gitconfig").write_text(f"[credential]\n\thelper = store --file {stored}\n")
    env["GIT_CONFIG_GLOBAL"] = str(tmp_path / "gitconfig")
    runs = []

    forked = run_invoke(["fork", "--url", secret_url, "--json"], env=env, cache=cache, timeout=300)
    runs.append(forked)
    assert forked.returncode == 0, forked.stderr
    assert server.authorized > 0  # the credentials did reach git (the server refuses without them)
    assert json.loads(forked.stdout)["url"] == f"http://{server.host}/fork.git"
    assert not stored.exists(), "the user's credential helper stored the fork's token"

    built = run_invoke(
        ["build", "--platforms", "linux/amd64", "--variants", "executor", "--json"],
        env=env,
        cache=cache,
        timeout=900,
    )
    runs.append(built)
    assert built.returncode == 0, built.stderr
    published = run_invoke(
        ["publish", "--prefix", f"{registry.host}/secret", "--json"], env=env, cache=cache, timeout=300
    )
    runs.append(published)
    assert published.returncode == 0, published.stderr

    # git's own error quotes the URL: the message must not
    missing = secret_url.replace("fork.git", "missing.git")
    failed = run_invoke(["fork", "--url", missing], env=env, cache=cache, timeout=120)
    runs.append(failed)
    assert failed.returncode != 0 and "missing.git" in failed.stderr and "Traceback" not in failed.stderr
    # the hint names each task's option for a mirror (reproduce has --fork-url, not --url)
    assert "--fork-url for `invoke release` and `invoke reproduce`" in " ".join(failed.stderr.split())

    # a release dry run resolves the fork (ls-remote through the same askpass) and writes its report
    planned = run_invoke(
        [
            "release", "--dry-run", "--fork-url", secret_url, "--prefix", f"{registry.host}/secret",
            "--platforms", "linux/amd64", "--variants", "executor", "--report-dir", str(reports),
            "--certificate-identity", "https://ci.example.test/id", "--certificate-oidc-issuer",
            "https://issuer.example.test",
        ],
        env=env, cache=cache, timeout=300,
    )  # fmt: skip
    runs.append(planned)
    assert f"http://{server.host}/fork.git" in planned.stdout + planned.stderr + "".join(
        p.read_text() for p in _files(reports)
    ), planned.stderr

    # a release that fails (no such tag) still names the fork in its report: without the token
    bad = run_invoke(
        ["release", "--ref", "v9.9.9", "--fork-url", secret_url, "--prefix", f"{registry.host}/secret",
         "--report-dir", str(reports), "--certificate-identity", "https://ci.example.test/id",
         "--certificate-oidc-issuer", "https://issuer.example.test"],
        env=env, cache=cache, timeout=300,
    )  # fmt: skip
    runs.append(bad)
    assert bad.returncode == 2 and "v9.9.9" in bad.stderr, bad.stderr

    searched = 0
    source = f'"org.opencontainers.image.source":"http://{server.host}/fork"'.encode()
    assert any(source in path.read_bytes() for path in _files(registry.root))  # the annotation, clean
    for run in runs:
        for needle in NEEDLES:
            assert needle not in run.stdout and needle not in run.stderr, run.args
    for root in (cache, reports, registry.root):
        for path in _files(root):
            data = path.read_bytes()
            searched += 1
            for needle in NEEDLES:
                assert needle.encode() not in data, f"{needle[:8]}... found in {path}"
    assert searched > 20
