"""The session's leftover check finds the processes the tests started, and not rootless podman's pause
process (`catatonit -P`), which podman keeps per user on purpose."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.support.leftovers import MARKER, marked_processes


def test_the_check_finds_a_marked_process_but_not_podmans_pause_process() -> None:
    token = secrets.token_hex(8)
    env = {**os.environ, MARKER: token}
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    # a process whose command line is podman's pause process's: `catatonit -P` (Python waiting on stdin)
    pause = subprocess.Popen(["catatonit", "-P"], executable=sys.executable, env=env, stdin=subprocess.PIPE)
    unmarked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = marked_processes(token)
        pids = {line.split(":")[0] for line in found}
        assert f"pid {ours.pid}" in pids, found
        assert f"pid {pause.pid}" not in pids, found
        assert f"pid {unmarked.pid}" not in pids, found
    finally:
        for process in (ours, pause, unmarked):
            process.kill()
            process.wait()
