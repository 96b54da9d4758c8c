"""Run a command and measure it: wall time and the peak resident memory of the whole process tree.

The command runs under a fresh Python wrapper whose only child it is, so the wrapper's
``RUSAGE_CHILDREN`` peak is the command's own (with what it waited for), whatever else this process ran.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write('\\n' + json.dumps({'peak_kib': peak}) + '\\n')\n"
    "sys.exit(code)\n"
)


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mib: float


def measure(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None, timeout: float = 600
) -> Measured:
    """Run ``argv`` to its end (in a session of its own: on a timeout the whole tree is killed, and
    ``subprocess.TimeoutExpired`` raised)."""
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, *argv],
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    seconds = time.monotonic() - started
    lines = stderr.rstrip("\n").splitlines()
    peak = json.loads(lines[-1])["peak_kib"]
    return Measured(process.returncode, stdout, "\n".join(lines[:-1]), seconds, peak / 1024)
