"""What a failed external program said: its last lines, quoted in the error the pipeline raises.

An exit status alone ("git exited with status 128") tells nobody what to do; the tool's own last
lines ("Permission denied") usually do. Every place that runs git, podman, buildah, skopeo, Go,
mmdebstrap or apt-get builds its error message with :func:`failure`. A program whose output the user
follows as it comes (kaniko in podman) runs through :func:`stream`, which keeps those last lines too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence

TAIL_LINES = 8


def tail(text: str | bytes | None, count: int = TAIL_LINES) -> str:
    """The last ``count`` non-blank lines of ``text`` (stripped of git's ``stderr: '...'`` wrapping)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = text.strip()
    if text.startswith("stderr: "):
        text = text[len("stderr: ") :].strip("'\n ")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def failure(
    what: str, tool: str, status: int | None, output: str | bytes | None, count: int = TAIL_LINES
) -> str:
    """``WHAT failed (TOOL exit status N):`` followed by the tool's last lines, or the status alone
    with a note that the tool printed nothing."""
    said = tail(output, count)
    status_text = f"{tool} exit status {status}" if status is not None else f"{tool} failed"
    if said:
        return f"{what} failed ({status_text}):\n{said}"
    return f"{what} failed ({status_text}; {tool} printed nothing)"


# ANSI escape sequences (CSI: colours, cursor moves), as kaniko's default `--log-format=color` writes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def stream(
    argv: Sequence[str], env: Mapping[str, str], timeout: float | None, count: int = TAIL_LINES
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with its stdout and stderr copied, line by line, to our stderr, without colour codes
    when our stderr is not a terminal (CI logs, files). The last lines come back as ``stderr``, so an
    error can quote them."""
    sink = sys.stderr
    plain = not (getattr(sink, "isatty", None) and sink.isatty())
    last: deque[str] = deque(maxlen=count)
    with subprocess.Popen(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        out = process.stdout

        def pump() -> None:
            for raw in out:
                line = raw.decode(errors="replace")
                if plain:
                    line = strip_ansi(line)
                sink.write(line)
                sink.flush()
                last.append(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            reader.join(timeout=5)
            raise
        reader.join()
    return subprocess.CompletedProcess(list(argv), returncode, "", "\n".join(last))
