"""Reading a Go conformance runner's own case list: buildah's ``tests/conformance/conformance_test.go``
(``var internalTestCases = []testCase{...}``), which says how each test data directory is built.

Only what kaniko has an equivalent of is followed: the context directory, the Dockerfile's name, an
inline Dockerfile (``dockerfileContents``: a string or ``strings.Join([]string{...}, SEP)``), build
arguments, and a build that must fail (``shouldFailAt``). A case that depends on the runner's Go code
(``tweakContextDir``), on buildah's own mounts (``transientMounts``) or that the runner builds with
buildah only (``withoutDocker``) is listed with that reason. Fields are read by gofmt's layout (two tabs
before each field of a case), which is how the file is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_START = re.compile(r"var internalTestCases = \[\]testCase\{")
_FIELD = re.compile(r"^\t\t(\w+):\s*(.*)$")
_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')


@dataclass(frozen=True)
class RunnerEntry:
    """One case of the runner, as far as it can be followed."""

    name: str
    context_dir: str = ""
    dockerfile: str = ""
    contents: str | None = None  # an inline Dockerfile
    build_args: dict[str, str] = field(default_factory=dict)
    should_fail_at: int = 0  # the line where the build must fail (0: it must succeed)
    skip: str = ""


def _string(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    try:
        return str(json.loads(literal))
    except ValueError:
        return literal[1:-1].encode().decode("unicode_escape", errors="replace")


def _entries(text: str) -> list[str]:
    """The text of each top-level ``{...}`` of the case list (strings, runes and comments respected)."""
    start = _START.search(text)
    if start is None:
        return []
    out: list[str] = []
    depth, begin, i = 0, 0, start.end()
    while i < len(text):
        char = text[i]
        if char in "\"'`":
            end = text.index(char, i + 1) if char == "`" else _end_of_quoted(text, i)
            i = end + 1
            continue
        if text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if char == "{":
            depth += 1
            if depth == 1:
                begin = i
        elif char == "}":
            if depth == 0:
                break  # the end of the list
            depth -= 1
            if depth == 0:
                out.append(text[begin : i + 1])
        i += 1
    return out


def _end_of_quoted(text: str, i: int) -> int:
    quote, j = text[i], i + 1
    while text[j] != quote:
        j += 2 if text[j] == "\\" else 1
    return j


def _fields(entry: str) -> dict[str, str]:
    """Each field's raw value text (multi-line values up to the next field of the case)."""
    found: dict[str, str] = {}
    current = ""
    for line in entry.splitlines():
        match = _FIELD.match(line)
        if match:
            current = match[1]
            found[current] = match[2]
        elif current and line.startswith("\t\t"):
            found[current] += "\n" + line
    return found


def _contents(raw: str) -> str | None:
    raw = raw.strip().rstrip(",")
    join = re.fullmatch(r"strings\.Join\(\[\]string\{(.*)\},\s*(\"[^\"]*\"|`[^`]*`)\)", raw, re.S)
    if join:
        body = re.sub(r"//[^\n]*", "", join[1])
        if re.sub(_LITERAL, "", body).replace(",", "").strip():
            return None  # something other than string literals (a call, a constant): Go code
        return _string(join[2]).join(_string(lit) for lit in _LITERAL.findall(body))
    if _LITERAL.fullmatch(raw):
        return _string(raw)
    return None


def _quoted(raw: str) -> str:
    literal = _LITERAL.match(raw.strip())
    return _string(literal[0]) if literal else ""


def parse(text: str) -> list[RunnerEntry]:
    """Every case of the runner's list, in its order."""
    out: list[RunnerEntry] = []
    for number, entry in enumerate(_entries(text), start=1):
        fields = _fields(entry)
        name = _quoted(fields.get("name", "")) or f"case-{number}"
        contents = None
        skip = ""
        if "dockerfileContents" in fields:
            contents = _contents(fields["dockerfileContents"])
            if contents is None:
                skip = "the suite's runner computes its Dockerfile in Go code"
        if "tweakContextDir" in fields:
            skip = "the suite's runner prepares its context in Go code (tweakContextDir) before the build"
        elif "transientMounts" in fields:
            skip = (
                "it needs the builder's own CLI mounts (buildah --volume), which kaniko has no equivalent of"
            )
        elif fields.get("withoutDocker", "").startswith("true"):
            skip = "the suite builds it with buildah only: it depends on a buildah-specific feature"
        strings = [_string(s) for s in _LITERAL.findall(fields.get("buildArgs", ""))]
        args = dict(zip(strings[::2], strings[1::2], strict=False))
        fail_at = re.match(r"\d+", fields.get("shouldFailAt", ""))
        out.append(
            RunnerEntry(
                name=name,
                context_dir=_quoted(fields.get("contextDir", "")),
                dockerfile=_quoted(fields.get("dockerfile", "")),
                contents=contents,
                build_args=args,
                should_fail_at=int(fail_at[0]) if fail_at else 0,
                skip=skip,
            )
        )
    return out
