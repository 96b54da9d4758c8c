"""What a failed external program said: its last lines, quoted in the error the pipeline raises.

An exit status alone ("git exited with status 128") tells nobody what to do; the tool's own last
lines ("Permission denied") usually do. Every place that runs git, podman, buildah, skopeo, Go,
mmdebstrap or apt-get builds its error message with :func:`failure`.
"""

from __future__ import annotations

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
