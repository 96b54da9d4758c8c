"""The conformance suite in shards: one release's cases split across CI jobs, each testing the published,
signed images on its part, and the parts joined back into the one result the release signs.

A shard is named ``K/N``: the K-th of N parts of the release's cases (every N-th case of the plan, in the
plan's order, starting with the K-th: a suite's slow cases spread over the parts). Each case runs there
with every building variant, as on one machine; the first part also runs the variant proofs
(variants.py), with the cases they build.

A shard job writes a :class:`ShardResult`: the release it tested (version, tag, commit), the images by
digest and its cases' results. :func:`join` checks what the release job is handed before it signs
anything: each result is of this release and tested the very digests it publishes, the results share
their reference and bases, every part of the N is there once, and each holds exactly the (case, variant)
pairs the release's own plan gives its part, and the proofs. A shard left out, a case dropped from one,
a result of another build: each is refused, naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.record import atomic_write_text
from pipeline.stages.conformance import variants
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import CaseResult, ConformanceResult
from pipeline.stages.conformance.runner import BUILD_VARIANTS

KIND = "kaniko-pipeline conformance shard"
FORMAT = 1
PROOFS = "variant-proofs"  # the suite name the variant proofs' results carry
_NAME = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class Shard:
    """The K-th of N parts of a release's cases."""

    part: int
    parts: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _NAME.match(text.strip())
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            raise UsageError(
                f"--shard {text!r} is not a part of the suite",
                hint="name it K/N, the K-th of N parts (1 <= K <= N), e.g. --shard 2/4",
            )
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.part}/{self.parts}"

    @property
    def proves(self) -> bool:
        """The first part also runs the variant proofs."""
        return self.part == 1

    def select(self, cases: Sequence[Case]) -> list[Case]:
        """Its cases: every N-th of the plan's, from the K-th on."""
        return [case for index, case in enumerate(cases) if index % self.parts == self.part - 1]

    def extra_cases(self, cases: Sequence[Case]) -> list[Case]:
        """The cases the variant proofs build that another part runs (prepared here, not run here)."""
        if not self.proves:
            return []
        mine = {case.name for case in self.select(cases)}
        return [case for case in variants.proof_cases(cases) if case.name not in mine]


def expected(cases: Sequence[Case], tested: Sequence[str], shard: Shard) -> list[tuple[str, str]]:
    """The (case, variant) pairs ``shard`` runs, variant by variant as on one machine, then its proofs."""
    order = [v for v in BUILD_VARIANTS if v in tested]
    mine = shard.select(cases)
    pairs = [(c.name, v) for v in order for c in mine if not c.variants or v in c.variants]
    if shard.proves and any(case.suite in ("repository", "cases") for case in cases):
        pairs += variants.planned(cases, tested)
    return pairs


@dataclass(frozen=True)
class ShardResult:
    """What one shard job tested, of which release, and how it came out."""

    shard: Shard
    version: str
    tag: str
    commit: str
    executors: Mapping[str, str]  # variant -> REPOSITORY@DIGEST it tested
    result: ConformanceResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": FORMAT,
            "shard": str(self.shard),
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "executors": dict(self.executors),
            "result": self.result.to_dict(),
        }

    def write(self, path: Path) -> None:
        """Whole or not at all (a job killed while writing leaves no half a result)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> ShardResult:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"--join-shard {path} cannot be read: {exc}",
                hint="pass the file a shard job's --shard-result wrote",
            ) from None
        if not isinstance(data, dict) or data.get("kind") != KIND or data.get("format") != FORMAT:
            raise UsageError(
                f"--join-shard {path} is not a conformance shard's result (format {FORMAT})",
                hint="pass the file `invoke release --shard K/N --shard-result FILE` wrote",
            )
        try:
            return cls(
                Shard.parse(str(data["shard"])),
                str(data["version"]),
                str(data["tag"]),
                str(data["commit"]),
                {str(k): str(v) for k, v in dict(data["executors"]).items()},
                ConformanceResult.from_dict(data["result"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(
                f"--join-shard {path} is damaged: {exc!r}", hint="take the shard job's result again"
            ) from None


@dataclass(frozen=True)
class ReleaseUnderTest:
    """What the joining release is: its version, tag and commit, and what it publishes by digest."""

    version: str
    tag: str
    commit: str
    executors: Mapping[str, str]  # variant -> REPOSITORY@DIGEST


def join(
    found: Sequence[tuple[Path, ShardResult]], cases: Sequence[Case], release: ReleaseUnderTest
) -> ConformanceResult:
    """The shards' results as the one result of ``release`` (its plan's ``cases``), after the checks in the
    module's docstring; in the order a one-machine run gives."""
    for path, shard in found:
        _check_release(path, shard, release)
    by_part = parts_of(found)
    first = by_part[1][1]
    parts = first.shard.parts
    tested = list(release.executors)
    merged = ConformanceResult(
        executor=release.executors.get("executor", first.result.executor),
        reference=first.result.reference,
        bases=first.result.bases,
    )
    results: dict[tuple[str, str], CaseResult] = {}
    for part in range(1, parts + 1):
        path, shard = by_part[part]
        _check_cases(path, shard, cases, tested, results)
        merged.matrix.update(shard.result.matrix)
        merged.seconds += shard.result.seconds
        for agent, kinds in shard.result.pulls.items():
            for kind, refs in kinds.items():
                merged.pulls.setdefault(agent, {}).setdefault(kind, []).extend(refs)
    whole = Shard(1, 1)
    merged.cases = [results[pair] for pair in expected(cases, tested, whole)]
    return merged


def parts_of(found: Sequence[tuple[Path, ShardResult]]) -> dict[int, tuple[Path, ShardResult]]:
    """Each part of one split, once and all of them (checked before the release touches anything)."""
    if not found:
        raise UsageError(
            "no shard result to join", hint="pass each shard job's result with --join-shard FILE"
        )
    first_path, first = found[0]
    parts = first.shard.parts
    by_part: dict[int, tuple[Path, ShardResult]] = {}
    for path, shard in found:
        if shard.shard.parts != parts:
            raise UsageError(
                f"{path} is shard {shard.shard} and {first_path} is shard {first.shard}: they split the suite differently",
                hint="join the results of one run of the shard jobs",
            )
        if (shard.result.reference, shard.result.bases) != (first.result.reference, first.result.bases):
            raise UsageError(
                f"{path} compared with {shard.result.reference} on {shard.result.bases}, {first_path} with "
                f"{first.result.reference} on {first.result.bases}",
                hint="run every shard job with the same --conformance-bases",
            )
        if shard.shard.part in by_part:
            raise UsageError(
                f"shard {shard.shard} is in both {by_part[shard.shard.part][0]} and {path}",
                hint="pass each shard job's result once",
            )
        by_part[shard.shard.part] = (path, shard)
    missing = [f"{part}/{parts}" for part in range(1, parts + 1) if part not in by_part]
    if missing:
        raise UsageError(
            f"no result for shard(s) {', '.join(missing)}: the release cannot say the whole suite passed",
            hint="pass every shard job's result with --join-shard FILE (a shard job that failed runs again)",
        )
    return by_part


def _check_release(path: Path, shard: ShardResult, release: ReleaseUnderTest) -> None:
    if (shard.version, shard.tag, shard.commit) != (release.version, release.tag, release.commit):
        raise UsageError(
            f"{path} tested {shard.tag} ({shard.version} at {shard.commit[:12]}), but this release is "
            f"{release.tag} ({release.version} at {release.commit[:12]})",
            hint="join the results of this release's shard jobs",
        )
    for variant in sorted({*shard.executors, *release.executors}):
        tested, published = shard.executors.get(variant), release.executors.get(variant)
        if tested != published:
            raise UsageError(
                f"{path} tested {variant} {tested or 'not at all'}, but this release publishes "
                f"{published or 'no ' + variant}",
                hint="run the shard jobs after this release's images are published and signed",
            )


def _check_cases(
    path: Path,
    shard: ShardResult,
    cases: Sequence[Case],
    tested: Sequence[str],
    into: dict[tuple[str, str], CaseResult],
) -> None:
    """Exactly the pairs the plan gives the shard, each once; added to ``into``."""
    want = expected(cases, tested, shard.shard)
    got = [(case.name, case.variant) for case in shard.result.cases]
    twice = sorted({pair for pair in got if got.count(pair) > 1})
    lacking = [pair for pair in want if pair not in got]
    extra = [pair for pair in got if pair not in want]
    for problem, pairs in (
        ("holds twice", twice),
        ("lacks", lacking),
        ("holds cases not in its part:", extra),
    ):
        if pairs:
            raise UsageError(
                f"{path} (shard {shard.shard}) {problem} {len(pairs)} case(s) of this release's plan "
                f"(first: {pairs[0][1]} {pairs[0][0]}): not the whole result of that shard",
                hint="run the shard job again with this release's --conformance and --conformance-suite",
            )
    suites = {case.name: case.suite for case in cases}
    for case in shard.result.cases:
        if case.suite != suites.get(case.name, PROOFS):
            raise UsageError(
                f"{path} names {case.name} a case of {case.suite}, the plan a case of {suites.get(case.name)}",
                hint="run the shard job again with this release's --conformance-suite",
            )
        into[(case.name, case.variant)] = case
