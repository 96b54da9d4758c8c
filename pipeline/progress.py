"""Progress of long work (clone, compile, upload) on stderr.

On a terminal a progress line is redrawn in place. Elsewhere (CI logs) each step is one line and
running counts are printed at most every ``quiet_interval`` seconds, so logs stay short.
Standard output is never touched: it carries the task's result (and ``--json``'s one object).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover - loop always returns


class Progress:
    """Reports steps and running counts of one task to a stream (stderr by default)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        interactive: bool | None = None,
        quiet_interval: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.quiet_interval = quiet_interval
        self.enabled = enabled
        self._lock = threading.Lock()
        self._last_emit: dict[str, float] = {}
        self._line_open = False

    def _write(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._line_open:
                self.stream.write("\r\033[K")
                self._line_open = False
            self.stream.write(text + "\n")
            self.stream.flush()

    def step(self, message: str) -> None:
        """A new step of the work: always printed, one line."""
        self._write(f"==> {message}")

    def info(self, message: str) -> None:
        self._write(f"    {message}")

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")

    def update(self, label: str, done: float, total: float | None = None, *, unit: str = "") -> None:
        """A running count. Redrawn in place on a terminal, throttled elsewhere."""
        if not self.enabled:
            return
        if unit == "bytes":
            shown = _human_bytes(done) + (f" / {_human_bytes(total)}" if total else "")
        else:
            shown = f"{done:.0f}" + (f"/{total:.0f}" if total else "") + (f" {unit}" if unit else "")
        if total:
            shown += f" ({min(100.0, 100.0 * done / total):.0f}%)"
        now = time.monotonic()
        with self._lock:
            if self.interactive:
                self.stream.write(f"\r\033[K    {label}: {shown}")
                self.stream.flush()
                self._line_open = True
                return
            finished = bool(total) and done >= (total or 0)
            last = self._last_emit.get(label)
            if last is not None and now - last < self.quiet_interval and not finished:
                return
            if finished and last == -1.0:
                return
            self._last_emit[label] = -1.0 if finished else now
            self.stream.write(f"    {label}: {shown}\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._line_open:
                self.stream.write("\n")
                self.stream.flush()
                self._line_open = False


class Silent(Progress):
    """Progress that prints nothing (for library use and tests)."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
