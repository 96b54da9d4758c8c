"""The capability matrix: a case that fails under the kaniko README's profile (every capability dropped
but CHOWN, FOWNER and DAC_OVERRIDE) runs again with the smallest extra capability that makes it pass.

The candidates are tried smallest first; what kaniko needs beyond the profile is, in practice, the
switch of user for a RUN after USER (setuid/setgid/setgroups), so the list is short on purpose:
adding SYS_ADMIN would make almost anything pass and tell users nothing they could use rootless.

Each attempt is a whole kaniko build, so the search spends as few as it can, without claiming what no
run showed:
- a capability is never taken to make a build fail, so when the largest candidate fails, no smaller one
  is tried (a case that nothing on the list helps costs two builds, not five);
- a case that needed a set with the previous executor (its kept hint, memo.py) tries that set first; when
  it passes, the cell says so, and that no smaller candidate sufficed is the previous executor's finding
  (re-checked whenever the set stops passing, the case changes, or no hint is kept).
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
    attempt: Attempt, *, progress: Progress, case: str, hint: tuple[str, ...] = ()
) -> tuple[tuple[str, ...] | None, BuilderRun, str]:
    """Run under the profile; if kaniko fails for want of a permission, find the smallest candidate
    that makes it pass (``hint`` first: the set this case needed with the previous executor).

    Returns the capabilities beyond the profile (``()`` = the profile is enough, None = nothing on the
    list helped) and the run to report: the passing one, or the profile's own failure.
    """
    run, problem = attempt(())
    if run.returncode == 0:
        return (), run, problem
    if not PERMISSION.search(run.log):
        return None, run, problem  # not a missing capability: no extra one would help

    def retry(caps: tuple[str, ...], why: str) -> tuple[BuilderRun, str] | None:
        progress.info(f"{case}: failed under the README profile; trying again with +{'+'.join(caps)}{why}")
        again, again_problem = attempt(caps)
        return (again, again_problem) if again.returncode == 0 else None

    largest = CANDIDATES[-1]
    tried = {largest}
    if hint in CANDIDATES and hint != largest:
        tried.add(hint)
        passed = retry(hint, " (what the previous executor needed)")
        if passed is not None:
            return hint, *passed
    widest = retry(largest, " (every candidate at once)")
    if widest is None:
        return None, run, problem  # more capabilities never make a build fail: no smaller set would pass
    for caps in CANDIDATES:
        if caps not in tried:
            passed = retry(caps, "")
            if passed is not None:
                return caps, *passed
    return largest, *widest


def describe(needs: tuple[str, ...] | None) -> str:
    """A matrix cell."""
    if needs is None:
        return "fails (no extra capability on the list helps)"
    if not needs:
        return "README profile"
    return "README profile + " + "+".join(needs)
