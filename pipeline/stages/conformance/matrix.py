"""The capability matrix: a case that fails under the kaniko README's profile (every capability dropped
but CHOWN, FOWNER and DAC_OVERRIDE) runs again with the smallest extra capability that makes it pass.

The candidates are tried smallest first; what kaniko needs beyond the profile is, in practice, the
switch of user for a RUN after USER (setuid/setgid/setgroups), so the list is short on purpose:
adding SYS_ADMIN would make almost anything pass and tell users nothing they could use rootless.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pipeline.progress import Progress
from pipeline.stages.conformance.builders import BuilderRun

CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("SETUID",),
    ("SETGID",),
    ("SETUID", "SETGID"),
    ("SETUID", "SETGID", "SETFCAP"),
)

# What a missing capability looks like in kaniko's output (setgroups/setuid/chown refused).
PERMISSION = re.compile(r"operation not permitted|permission denied", re.I)

Attempt = Callable[[Sequence[str]], tuple[BuilderRun, str]]


def smallest(
    attempt: Attempt, *, progress: Progress, case: str
) -> tuple[tuple[str, ...] | None, BuilderRun, str]:
    """Run under the profile; if kaniko fails, retry with each candidate until one passes.

    Returns the capabilities beyond the profile (``()`` = the profile is enough, None = nothing on the
    list helped) and the run to report: the passing one, or the profile's own failure.
    """
    run, problem = attempt(())
    if run.returncode == 0:
        return (), run, problem
    if not PERMISSION.search(run.log):
        return None, run, problem  # not a missing capability: no extra one would help
    for caps in CANDIDATES:
        progress.info(f"{case}: failed under the README profile; trying again with +{'+'.join(caps)}")
        retry, retry_problem = attempt(caps)
        if retry.returncode == 0:
            return caps, retry, retry_problem
    return None, run, problem


def describe(needs: tuple[str, ...] | None) -> str:
    """A matrix cell."""
    if needs is None:
        return "fails (no extra capability on the list helps)"
    if not needs:
        return "README profile"
    return "README profile + " + "+".join(needs)
