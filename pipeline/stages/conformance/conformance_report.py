"""The conformance report: per suite what ran and what became of it, per case this executor beside the
previous released one and buildah, the unclassified differences grouped for triage, and the known
differences with their evidence. Markdown (the release report, README) and plain values (JSON)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from pipeline.stages.conformance.compare import KNOWN, KnownDifference
from pipeline.stages.conformance.result import CaseResult, ConformanceResult, plain


def skip_kind(reason: str) -> str:
    """A skip reason without the names in it, so like reasons count together."""
    text = plain(reason)
    text = re.sub(r"its base \S+", "its base", text)
    text = re.sub(r"\(([a-z-]+ ?)+\)$", "", text).strip()
    text = re.sub(r"needs the network \(.*\)", "needs the network", text)
    return text.split(" (only ")[0].rstrip(" .:")


def suites(result: ConformanceResult) -> list[dict[str, Any]]:
    """Per suite: cases run, each outcome's count, skips by reason and the time (sum of the cases')."""
    by_suite: dict[str, list[CaseResult]] = defaultdict(list)
    for case in result.cases:
        by_suite[case.suite].append(case)
    out = []
    for name, cases in by_suite.items():
        outcomes = Counter(case.kind for case in cases)
        out.append(
            {
                "suite": name,
                "cases": len(cases),
                "run": len(cases) - outcomes["skipped"],
                "outcomes": {k: outcomes[k] for k in sorted(outcomes) if k != "skipped"},
                "skipped": dict(
                    Counter(skip_kind(c.reason) for c in cases if c.kind == "skipped").most_common()
                ),
                "kept_from_earlier_runs": sum(1 for c in cases if c.cached),
                "seconds": round(sum(c.seconds for c in cases), 1),
            }
        )
    return out


def signature(difference: str) -> str:
    """A difference without its path: ``/a/b: mode kaniko=0775 buildah=0755`` -> ``mode kaniko=0775
    buildah=0755``; presence keeps only which side has it."""
    _, _, what = difference.partition(": ")
    if what.startswith("presence "):
        kaniko = "absent" if "kaniko=absent" in what else "present"
        buildah = "absent" if what.endswith("buildah=absent") else "present"
        return f"presence kaniko={kaniko} buildah={buildah}"
    return re.sub(r"sha256:[0-9a-f]+|\d+ bytes", "…", what)


def unclassified(result: ConformanceResult) -> dict[str, list[str]]:
    """The differences no known difference explains, grouped by their shape: shape -> cases."""
    groups: dict[str, list[str]] = defaultdict(list)
    for case in result.cases:
        if case.kind != "differs":
            continue
        shapes = {signature(d) for d in case.differences} or {plain(case.reason).splitlines()[0]}
        for shape in sorted(shapes):
            groups[shape].append(case.name)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def _buildah(case: CaseResult) -> str:
    if case.kind == "skipped":
        return "-"
    if case.kind == "reference-failed":
        return "could not build it"
    if case.kind == "refused-as-expected" or (case.kind == "differs" and not case.differences):
        return "not asked (a build that must fail)"
    if case.kind == "kaniko-failed":
        return "built it"
    return "built it"


def cases_table(cases: Sequence[CaseResult]) -> str:
    rows = [
        "| case | variant | this executor | previous release | buildah |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        now = case.kind + (" (regression)" if case.regression else "")
        rows.append(
            f"| {case.name} | {case.variant} | {now} | {case.previous or 'not known'} | {_buildah(case)} |"
        )
    return "\n".join(rows)


def known_table(known: Sequence[KnownDifference] = KNOWN) -> str:
    """The known differences with their evidence (README's table, generated)."""
    rows = [
        "| name | what differs | buildah | BuildKit | legacy builder | upstream |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in known:
        rows.append(
            f"| {entry.name} | {entry.reason} | {entry.buildah} | {entry.buildkit} | {entry.legacy} "
            f"| {entry.upstream or '-'} |"
        )
    return "\n".join(rows)


def suites_table(result: ConformanceResult) -> str:
    rows = [
        "| suite | cases | run | matched | known differences | differs (unclassified) | kaniko failed "
        "| buildah failed | refused as expected | skipped | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in suites(result):
        o = item["outcomes"]
        rows.append(
            f"| {item['suite']} | {item['cases']} | {item['run']} | {o.get('matched', 0)} "
            f"| {o.get('known-differences', 0)} | {o.get('differs', 0)} | {o.get('kaniko-failed', 0)} "
            f"| {o.get('reference-failed', 0)} | {o.get('refused-as-expected', 0)} "
            f"| {sum(item['skipped'].values())} | {item['seconds']:.0f} |"
        )
    return "\n".join(rows)


def markdown(result: ConformanceResult) -> str:
    """The whole report, in Markdown (no terminal colour codes: every reason goes through plain())."""
    lines = [f"Conformance of `{result.executor}`: {result.summary()}", "", f"Bases: {result.bases}.", ""]
    lines += [suites_table(result), ""]
    if result.baseline:
        lines += [
            f"Compared with the previous release {result.baseline.get('tag')} ({result.baseline.get('executor')})."
        ]
        regressions = [c for c in result.cases if c.regression]
        lines += [f"Regressions: {', '.join(c.test_name for c in regressions) or 'none'}", ""]
    skipped = Counter(skip_kind(c.reason) for c in result.cases if c.kind == "skipped")
    if skipped:
        lines += (
            ["Skipped, by reason:", ""] + [f"- {n} × {reason}" for reason, n in skipped.most_common()] + [""]
        )
    groups = unclassified(result)
    if groups:
        lines += [
            "Unclassified differences, grouped for triage:",
            "",
            "| difference | cases |",
            "| --- | --- |",
        ]
        lines += [f"| {shape} | {', '.join(names)} |" for shape, names in groups.items()]
        lines += [""]
    lines += ["Per case:", "", cases_table(result.cases), "", "Known differences:", "", known_table()]
    return "\n".join(plain(line) for line in lines) + "\n"
