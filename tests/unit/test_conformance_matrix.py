"""The capability matrix's search: which builds it spends, and what it may conclude from them.

A "build" here is a rule (which capability sets make kaniko pass) standing in for kaniko, so every path of
the search can be checked; the real executor runs the same search in test-e2e against the real fork.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pipeline.progress import Silent
from pipeline.stages.conformance import matrix
from pipeline.stages.conformance.builders import BuilderRun
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.memo import Memo

REFUSED = "error building image: fork/exec /bin/sh: operation not permitted"


def _kaniko(
    passes: Callable[[frozenset[str]], bool], log: str = REFUSED
) -> tuple[matrix.Attempt, list[tuple[str, ...]]]:
    tried: list[tuple[str, ...]] = []

    def attempt(caps: Sequence[str]) -> tuple[BuilderRun, str]:
        tried.append(tuple(caps))
        ok = passes(frozenset(caps))
        return BuilderRun(0 if ok else 1, "" if ok else log, None, "sha256:x" if ok else "", 1.0), ""

    return attempt, tried


def _search(
    passes: Callable[[frozenset[str]], bool], hint: tuple[str, ...] = (), log: str = REFUSED
) -> tuple[tuple[str, ...] | None, list[tuple[str, ...]]]:
    attempt, tried = _kaniko(passes, log)
    needs, run, _ = matrix.smallest(attempt, progress=Silent(), case="c", hint=hint)
    assert run.returncode == (1 if needs is None else 0)
    return needs, tried


def both(caps: frozenset[str]) -> bool:
    return {"SETUID", "SETGID"} <= caps


ALL = ("SETUID", "SETGID", "SETFCAP")


def test_the_profile_alone_is_one_build() -> None:
    assert _search(lambda caps: True) == ((), [()])


def test_a_failure_that_is_not_a_permission_is_not_retried() -> None:
    assert _search(lambda caps: False, log="error building image: no such file") == (None, [()])


def test_when_every_candidate_at_once_fails_no_smaller_set_is_built() -> None:
    assert _search(lambda caps: False) == (None, [(), ALL])


def test_without_a_hint_the_smallest_passing_set_is_found_and_every_smaller_one_was_built() -> None:
    needs, tried = _search(both)
    assert needs == ("SETUID", "SETGID")
    assert tried == [(), ALL, ("SETUID",), ("SETGID",), ("SETUID", "SETGID")]


def test_a_set_only_the_largest_satisfies_is_reported_as_the_largest() -> None:
    needs, tried = _search(lambda caps: "SETFCAP" in caps)
    assert needs == ALL
    assert tried == [(), ALL, ("SETUID",), ("SETGID",), ("SETUID", "SETGID")]


def test_the_previous_executors_set_is_tried_first_and_kept_when_it_passes() -> None:
    needs, tried = _search(both, hint=("SETUID", "SETGID"))
    assert needs == ("SETUID", "SETGID")
    assert tried == [(), ("SETUID", "SETGID")]


def test_a_new_executor_that_needs_nothing_extra_is_seen_whatever_the_hint() -> None:
    assert _search(lambda caps: True, hint=("SETUID", "SETGID")) == ((), [()])


def test_a_hint_that_stops_passing_falls_back_to_the_whole_search() -> None:
    needs, tried = _search(lambda caps: "SETFCAP" in caps, hint=("SETUID", "SETGID"))
    assert needs == ALL
    assert tried == [(), ("SETUID", "SETGID"), ALL, ("SETUID",), ("SETGID",)]


@pytest.mark.parametrize("hint", [("SYS_ADMIN",), ("SETUID", "SETGID", "SETFCAP")])
def test_a_hint_off_the_list_or_the_largest_set_gets_the_whole_search(hint: tuple[str, ...]) -> None:
    needs, tried = _search(both, hint=hint)
    assert needs == ("SETUID", "SETGID")
    assert tried == [(), ALL, ("SETUID",), ("SETGID",), ("SETUID", "SETGID")]


def test_the_memo_keeps_a_cases_needs_by_its_content_not_its_executor(tmp_path: Path) -> None:
    context = tmp_path / "case"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM debian\nUSER 1000\nRUN id\n")
    case = Case(name="user-run", directory=context)
    memo = Memo(tmp_path / "memo")
    key = memo.key(case, {"debian": "sha256:" + "1" * 64})
    assert memo.needs(key) == ()
    memo.keep_needs(key, ("SETUID", "SETGID"))
    assert Memo(tmp_path / "memo").needs(key) == ("SETUID", "SETGID")
    (context / "Dockerfile").write_text("FROM debian\nUSER 1001\nRUN id\n")
    changed = Memo(tmp_path / "memo").key(case, {"debian": "sha256:" + "1" * 64})
    assert changed != key and memo.needs(changed) == ()
    damaged = next((tmp_path / "memo" / "needs").rglob("*.json"))
    damaged.write_text('{"needs": "SETUID"}')
    assert memo.needs(key) == ()
