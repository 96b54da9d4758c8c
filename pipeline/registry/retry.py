"""Retrying registry requests: which answers are worth another try, how long to wait, and for how long.

Connection errors, timeouts, 408, 429 and 5xx (not 501/505) are retried with jittered exponential
backoff within an overall ``Deadline``, waiting as long as Retry-After says (seconds or an HTTP
date) when the registry says how long. The backoff doubles up to BACKOFF_CAP seconds, or up to
``KANIKO_PIPELINE_RETRY_BACKOFF_CAP`` when set (the tests that kill a registry on purpose wait a
fraction of a second between tries instead of two minutes in all).
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from pipeline.errors import ConfigError, RegistryError

RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600)) - {501, 505}
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
BACKOFF_CAP_VARIABLE = "KANIKO_PIPELINE_RETRY_BACKOFF_CAP"
MAX_ATTEMPTS = 12


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unusable
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_cap(env: Mapping[str, str] | None = None) -> float:
    """The longest wait between two tries, in seconds: BACKOFF_CAP, or the environment's setting."""
    text = (os.environ if env is None else env).get(BACKOFF_CAP_VARIABLE, "").strip()
    if not text:
        return BACKOFF_CAP
    try:
        cap = float(text)
    except ValueError:
        cap = -1.0
    if not 0 < cap < float("inf"):
        raise ConfigError(
            f"{BACKOFF_CAP_VARIABLE}={text!r} is not a positive number of seconds",
            hint=f"set it to the longest wait between two tries of a registry request (default {BACKOFF_CAP:g})",
        )
    return cap


def backoff_delay(attempt: int, env: Mapping[str, str] | None = None) -> float:
    """Jittered exponential backoff (equal jitter): attempt 0 waits 0.25-0.5 s, doubling to the cap."""
    cap = backoff_cap(env)
    ceiling = min(cap, min(BACKOFF_BASE, cap) * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)


class Deadline:
    """An overall time budget for one operation and its retries."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def sleep(self, seconds: float, what: str) -> None:
        left = self.remaining()
        if seconds > left:
            raise RegistryError(
                f"{what}: gave up after {self.seconds:.0f} s of retries (the registry asked to wait "
                f"{seconds:.0f} s more)",
                hint="try again later, or raise the client's deadline",
            )
        time.sleep(max(0.0, seconds))
