"""Issue 21 item 9: SIGTERM (a CI cancel) runs the clean-up; private files go under $XDG_RUNTIME_DIR.

A real ``invoke fork`` with a token in the fork URL waits on a loopback server that never answers;
while git waits, the askpass script that hands git the token sits in a private directory. The test
sends the process SIGTERM and checks that it exits 143 saying so, and that nothing is left: no private
directory (neither under $XDG_RUNTIME_DIR nor under TMPDIR) and no half-made clone in the cache.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import require_tool
from tests.support.cli import ROOT

TOKEN = "ghp_sigtermSecret0123456789"


def _private_dirs(*roots: Path) -> list[Path]:
    return [path for root in roots for path in root.glob("kp-git-*")]


def test_sigterm_removes_private_files(tmp_path: Path) -> None:
    require_tool("git", "the fork is fetched with git")
    runtime, tmp, cache, fork_dir = (tmp_path / name for name in ("runtime", "tmp", "cache", "fork"))
    for path in (runtime, tmp, fork_dir):
        path.mkdir(mode=0o700)
    silent = socket.create_server(("127.0.0.1", 0), backlog=8)  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/fork.git"
    (fork_dir / "pin.json").write_text(json.dumps({"url": url, "tag": "v1.0.0", "commit": "a" * 40}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_PIPELINE_", "KANIKO_"))},
        "XDG_RUNTIME_DIR": str(runtime),
        "TMPDIR": str(tmp),
        "INVOKE_PIPELINE_CACHE_DIR": str(cache),
        "INVOKE_PIPELINE_FORK_DIR": str(fork_dir),
    }
    secret_url = url.replace("http://", f"http://bot:{TOKEN}@")
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "fork", "--url", secret_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _private_dirs(runtime, tmp) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        made = _private_dirs(runtime, tmp)
        assert made, f"no private directory appeared (exit {process.poll()})"
        time.sleep(1.0)  # git is waiting on the silent server now
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        silent.close()
    assert _private_dirs(runtime, tmp) == []
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr and TOKEN not in stderr
    assert [path.parent for path in made] == [runtime]  # the private runtime dir, not TMPDIR
    forks = cache / "forks"
    left = [p.name for p in forks.iterdir() if not p.name.endswith(".lock")] if forks.exists() else []
    assert left == [], left
