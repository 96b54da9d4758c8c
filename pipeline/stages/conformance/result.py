"""The conformance stage's typed result: one :class:`CaseResult` per case and variant, totals, the
capability matrix. Plain values, so other stages (attestations, the release report) can read them."""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]
# What became of a case: the report's columns. Passed: matched (only buildah's own label differs, or
# what the case ignores), known-differences (classified ones), refused-as-expected (a build the suite
# expects to fail); failed: differs (unclassified differences), kaniko-failed (the build or a check),
# reference-failed (buildah could not build it: nothing to compare with).
CaseOutcome = Literal[
    "matched",
    "known-differences",
    "refused-as-expected",
    "differs",
    "kaniko-failed",
    "reference-failed",
    "skipped",
]
OUTCOMES: tuple[CaseOutcome, ...] = typing.get_args(CaseOutcome)
ALWAYS = ("buildah-version-label",)  # a known difference every buildah image has: not worth a column
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # kaniko's coloured log levels (\x1b[36mINFO\x1b[0m)

# How much of the conformance suite a release runs: all of it, the quick cases, or none.
ConformanceMode = Literal["full", "quick", "off"]


def plain(text: str) -> str:
    """``text`` without ANSI escape sequences (they have no place in JSON or Markdown)."""
    return _ANSI.sub("", text)


README_PROFILE = "README profile"


def _outcome_of(text: object) -> CaseOutcome | Literal[""]:
    """A recorded outcome, read back ("" for a result that predates the field)."""
    for known in OUTCOMES:
        if text == known:
            return known
    if text == "":
        return ""
    raise ValueError(f"unknown outcome {text!r}")


@dataclass(frozen=True)
class CaseResult:
    name: str
    variant: str
    status: Status
    seconds: float = 0.0
    differences: tuple[str, ...] = ()  # the first unexpected differences against buildah
    known: Mapping[str, int] = field(default_factory=dict)  # known differences that applied
    needs: tuple[str, ...] = ()  # capabilities beyond the README profile that made it pass
    reason: str = ""  # why it failed (checks, kaniko's last log lines) or was skipped
    gating: bool = True  # False: reported, but does not fail the stage (the fork's own Dockerfiles)
    outcome: CaseOutcome | Literal[""] = ""  # the report's column; "" before the run sets it
    suite: str = "repository"
    cached: bool = False  # reused from an earlier run with the same executor, case and bases
    previous: str = ""  # the previous released executor's status for this case ("" when not known)
    regression: bool = False  # passed with the previous released executor, and not now: it gates

    @property
    def kind(self) -> CaseOutcome:
        """The outcome, for results that predate the field: from the status."""
        if self.outcome:
            return self.outcome
        return (
            "matched"
            if self.status == "passed"
            else "skipped"
            if self.status == "skipped"
            else "kaniko-failed"
        )

    @property
    def test_name(self) -> str:
        """Its name in the signed test result."""
        return f"conformance/{self.variant}/{self.name}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        status = data["status"]
        if status not in ("passed", "failed", "skipped"):
            raise ValueError(f"unknown status {status!r}")
        return cls(
            name=str(data["name"]),
            variant=str(data["variant"]),
            status=status,
            seconds=float(data.get("seconds", 0.0)),
            differences=tuple(data.get("differences", ())),
            known=dict(data.get("known_differences", {})),
            needs=tuple(data.get("needs", ())),
            reason=str(data.get("reason", "")),
            gating=bool(data.get("gating", True)),
            outcome=_outcome_of(data.get("outcome", "")),
            suite=str(data.get("suite", "repository")),
            cached=bool(data.get("cached", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "differences": [plain(d) for d in self.differences],
            "known_differences": dict(self.known),
            "needs": list(self.needs),
            "reason": plain(self.reason),
            "gating": self.gating,
            "outcome": self.kind,
            "suite": self.suite,
            "cached": self.cached,
            "previous": self.previous,
            "regression": self.regression,
        }


@dataclass
class ConformanceResult:
    executor: str
    reference: str  # "buildah" or "none"
    cases: list[CaseResult] = field(default_factory=list)
    matrix: dict[str, str] = field(
        default_factory=dict
    )  # case -> "README profile" / "+SETUID,SETGID" / "fails"
    seconds: float = 0.0
    baseline: dict[str, Any] = field(
        default_factory=dict
    )  # the previous release compared with (regressions.py)
    bases: str = "the offline stand-ins"  # or "real bases from URL through a pull-through cache"
    pulls: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # through the cache, by client

    @property
    def ok(self) -> bool:
        return bool(self.cases) and not any(case.status == "failed" and case.gating for case in self.cases)

    def count(self, status: Status) -> int:
        return sum(1 for case in self.cases if case.status == status)

    def failed(self) -> list[CaseResult]:
        """The failures that fail the stage."""
        return [case for case in self.cases if case.status == "failed" and case.gating]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "executor": self.executor,
            "reference": self.reference,
            "bases": self.bases,
            "pulls": {agent: dict(kinds) for agent, kinds in self.pulls.items()},
            "totals": {s: self.count(s) for s in ("passed", "failed", "skipped")},
            "cases": [case.to_dict() for case in self.cases],
            "matrix": dict(self.matrix),
            "seconds": round(self.seconds, 1),
            "baseline": dict(self.baseline),
            "regressions": [case.test_name for case in self.cases if case.regression],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConformanceResult:
        """A result :meth:`to_dict` wrote (a shard job's, shards.py), read back."""
        return cls(
            executor=str(data["executor"]),
            reference=str(data["reference"]),
            cases=[CaseResult.from_dict(case) for case in data["cases"]],
            matrix={str(k): str(v) for k, v in dict(data.get("matrix", {})).items()},
            seconds=float(data.get("seconds", 0.0)),
            bases=str(data.get("bases", "the offline stand-ins")),
            pulls={
                str(agent): {str(kind): [str(ref) for ref in refs] for kind, refs in dict(kinds).items()}
                for agent, kinds in dict(data.get("pulls", {})).items()
            },
        )

    def summary(self) -> str:
        reported = sum(1 for case in self.cases if case.status == "failed" and not case.gating)
        regressed = sum(1 for case in self.cases if case.regression)
        return (
            f"{self.count('passed')} passed, {self.count('failed')} failed"
            + (f" ({reported} of them reported only)" if reported else "")
            + (f" ({regressed} regression(s) against the previous release)" if regressed else "")
            + f", {self.count('skipped')} skipped in {self.seconds:.0f} s"
        )

    def text(self) -> str:
        """The human report: a line per case and variant, failures with their reasons, the matrix."""
        lines = [f"conformance of {self.executor} (reference: {self.reference}; bases: {self.bases})"]
        for case in self.cases:
            extra = f" (needs {'+'.join(case.needs)})" if case.needs else ""
            extra += " [reported only]" if case.status == "failed" and not case.gating else ""
            extra += " [REGRESSION]" if case.regression else ""
            extra += f" (previous release: {case.previous})" if case.previous else ""
            extra += " (kept from an earlier run)" if case.cached else ""
            lines.append(f"  {case.status:7} {case.variant:8} {case.name}{extra}  {case.seconds:.1f} s")
            if case.status == "skipped":
                lines.append(f"          {case.reason}")
            if case.status == "failed":
                lines += [
                    f"          {line}" for line in (case.reason.splitlines() + list(case.differences))[:14]
                ]
        if self.matrix:
            lines += ["", matrix_table(self.matrix)]
        lines += ["", self.summary()]
        return "\n".join(lines)


def matrix_table(matrix: Mapping[str, str]) -> str:
    """The capability matrix as a Markdown table (README and the release report)."""
    rows = ["| case | runs with |", "| --- | --- |"]
    rows += [f"| {name} | {value} |" for name, value in sorted(matrix.items())]
    return "\n".join(rows)
