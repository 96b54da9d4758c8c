"""Compare the image kaniko built with the one the reference builder (buildah) built from the same case.

Every path's type, mode, owner, size, content hash and link target, and the config's Env, Entrypoint,
Cmd, User, WorkingDir, ExposedPorts, Volumes and Labels. Timestamps are never compared. A difference
fails the case unless it is on :data:`KNOWN`, the short list of known kaniko-vs-buildah differences,
each with its reason; those are reported as known, never hidden.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.stages.conformance.snapshot import CONFIG_KEYS, PathEntry, Snapshot

FIELDS = ("type", "mode", "uid", "gid", "size", "sha256", "target")


@dataclass(frozen=True)
class Difference:
    """One way the two images differ. ``where`` is a path or ``config.KEY``."""

    where: str
    field: str  # a PathEntry field, "presence", or the config key
    kaniko: str
    reference: str

    def text(self) -> str:
        return f"{self.where}: {self.field} kaniko={self.kaniko} buildah={self.reference}"

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "field": self.field, "kaniko": self.kaniko, "reference": self.reference}


# Whether a difference is the known one; it sees both images (kaniko's first) for context.
Matcher = Callable[[Difference, Snapshot, Snapshot], bool]


NOT_CHECKED = "not checked here"


@dataclass(frozen=True)
class KnownDifference:
    """A difference explained with evidence: what each reference builder does, and the upstream issue."""

    name: str
    reason: str
    matches: Matcher
    buildah: str = NOT_CHECKED  # what buildah (the reference here, Debian's 1.28) does
    buildkit: str = NOT_CHECKED  # what Docker's BuildKit does
    legacy: str = NOT_CHECKED  # what Docker's legacy builder did
    upstream: str = ""  # an upstream issue (owner/repo#N) or document, where there is one

    def evidence(self) -> dict[str, str]:
        return {
            "name": self.name,
            "reason": self.reason,
            "buildah": self.buildah,
            "buildkit": self.buildkit,
            "legacy": self.legacy,
            "upstream": self.upstream,
        }


def _only_in_reference(pattern: str) -> Matcher:
    regex = re.compile(pattern)
    return lambda d, k, r: d.field == "presence" and d.kaniko == "absent" and bool(regex.fullmatch(d.where))


def _label_only_in_reference(label: str) -> Matcher:
    def match(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
        return d.where == "config.Labels" and d.field == f"label {label}" and d.kaniko == "absent"

    return match


def _is_under(path: str, roots: list[str]) -> bool:
    return any(root == path or root.startswith(path.rstrip("/") + "/") for root in roots)


def _volume_directory(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    """A directory only one image has, that is a VOLUME or leads to one."""
    if d.field != "presence" or not (d.kaniko.startswith("dir ") or d.reference.startswith("dir ")):
        return False
    return _is_under(d.where, list(kaniko.config.get("Volumes") or []))


def _lists(d: Difference) -> tuple[list[str], list[str]] | None:
    import ast

    try:
        mine, theirs = ast.literal_eval(d.kaniko), ast.literal_eval(d.reference)
    except (ValueError, SyntaxError):
        return None
    if isinstance(mine, list) and isinstance(theirs, list):
        return [str(v) for v in mine], [str(v) for v in theirs]
    return None


def _env_order(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    found = _lists(d) if d.where == "config.Env" else None
    return found is not None and sorted(found[0]) == sorted(found[1]) and found[0] != found[1]


def _json_with_trailing_comment(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    found = _lists(d) if d.where in ("config.Entrypoint", "config.Cmd") else None
    if found is None or len(found[0]) != 3 or found[0][:2] != ["/bin/sh", "-c"]:
        return False
    text = found[0][2]
    if not text.startswith("[") or "]" not in text:
        return False
    head, tail = text[: text.index("]") + 1], text[text.index("]") + 1 :]
    try:
        return bool(json.loads(head) == found[1] and tail.strip().startswith("#"))
    except ValueError:
        return False


def _expose_two_protocols(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    found = _lists(d) if d.where == "config.ExposedPorts" else None
    if found is None or not set(found[1]) < set(found[0]):
        return False
    ports = {p.split("/")[0] for p in found[1]}
    return all(p.split("/")[0] in ports for p in set(found[0]) - set(found[1]))


def _gid_of_uid_without_group(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    entry = kaniko.files.get(d.where)
    return d.field == "gid" and d.reference == "0" and entry is not None and str(entry.uid) == d.kaniko


def _workdir_parent_owner(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    """The owner of a parent directory that WORKDIR created for a non-root USER."""
    workdir = str(kaniko.config.get("WorkingDir") or "")
    if d.field not in ("uid", "gid") or d.kaniko != "0" or not workdir or d.where == workdir:
        return False
    return workdir.startswith(d.where.rstrip("/") + "/")


def _chown_copy_parent_owner(d: Difference, kaniko: Snapshot, reference: Snapshot) -> bool:
    """A directory COPY --chown had to create (kaniko: root's) for a file it gave to that owner."""
    entry, theirs = kaniko.files.get(d.where), reference.files.get(d.where)
    if d.field not in ("uid", "gid") or d.kaniko != "0" or entry is None or theirs is None:
        return False
    if entry.type != "dir" or theirs.type != "dir":
        return False
    prefix = d.where.rstrip("/") + "/"
    return any(
        path.startswith(prefix) and str(getattr(child, d.field)) == d.reference
        for path, child in kaniko.files.items()
    )


# The documented list (README "Conformance"): each entry says why the difference is not a kaniko bug.
KNOWN: tuple[KnownDifference, ...] = (
    KnownDifference(
        "buildah-version-label",
        "buildah stamps every image it builds with the label io.buildah.version; kaniko adds no label",
        _label_only_in_reference("io.buildah.version"),
        buildah="labels every image io.buildah.version",
        buildkit="adds no label",
        legacy="added no label",
    ),
    KnownDifference(
        "run-mountpoints",
        "buildah leaves the mount points of a RUN container (/dev, /proc, /sys, /run, /etc/hosts, "
        "/etc/resolv.conf, /etc/hostname, /run/.containerenv) in the layer when the base lacks them; "
        "kaniko runs RUN in its own root and never snapshots them",
        _only_in_reference(r"/(dev|proc|sys|run)(/.*)?|/etc/(hosts|hostname|resolv\.conf)"),
        buildah="leaves the RUN container's mount points in the layer when the base lacks them",
    ),
    KnownDifference(
        "volume-directories",
        "whether a VOLUME path exists as a directory in the image: kaniko creates it (and its parents) "
        "when it takes its next snapshot, buildah when it runs a later RUN or commits after one; both "
        "record the volume in the config",
        _volume_directory,
        buildah="creates the VOLUME path when it runs a later RUN or commits after one",
    ),
    KnownDifference(
        "env-order",
        "ENV redefining an inherited variable (PATH): the same variables and values, but buildah moves the "
        "variable to the end, kaniko (like Docker) keeps it in place",
        _env_order,
        buildah="moves a redefined variable to the end of Env",
        buildkit="keeps a redefined variable in its place",
        legacy="kept a redefined variable in its place",
    ),
    KnownDifference(
        "json-form-trailing-comment",
        'ENTRYPOINT ["x"] # comment: the text is not a JSON array, so kaniko (like Docker\'s parser) '
        "takes the shell form; buildah 1.28 drops the comment and takes the JSON form",
        _json_with_trailing_comment,
        buildah="1.28 drops the comment and takes the JSON form",
        buildkit="takes the shell form (the text is not a JSON array)",
        legacy="took the shell form (the same parser)",
    ),
    KnownDifference(
        "expose-two-protocols",
        "EXPOSE 83/udp then EXPOSE 83/tcp: kaniko (like Docker) exposes both; buildah 1.28 keeps one "
        "protocol per port number",
        _expose_two_protocols,
        buildah="1.28 keeps one protocol per port number",
        buildkit="exposes both (83/udp and 83/tcp)",
        legacy="exposed both",
    ),
    KnownDifference(
        "gid-of-uid-without-group",
        "USER with a numeric UID, no group and no /etc/passwd entry: kaniko runs RUN with GID = UID, "
        "buildah (like runc's default for an unknown user) with GID 0, so files RUN creates differ in group",
        _gid_of_uid_without_group,
        buildah="runs RUN with GID 0 (runc's default for a user it cannot look up)",
    ),
    KnownDifference(
        "workdir-parent-owner",
        "WORKDIR after a non-root USER: both builders give the working directory to that user, but "
        "buildah also gives it the parent directories WORKDIR had to create, kaniko leaves them to root",
        _workdir_parent_owner,
        buildah="gives the USER the parent directories WORKDIR creates, too",
    ),
    KnownDifference(
        "chown-copy-parent-owner",
        "COPY --chown of a file into directories that do not exist yet (COPY --chown=1000:1000 a.txt "
        "/etc/owned.txt onto scratch): kaniko creates the missing parents for root, buildah for the "
        "--chown owner",
        _chown_copy_parent_owner,
        buildah="gives the created parent directories to the --chown owner",
        buildkit="gives the created parent directories to the --chown owner",
        legacy="created the parent directories for root, as kaniko does",
        upstream="moby/buildkit#640",
    ),
)


def diff(kaniko: Snapshot, reference: Snapshot) -> list[Difference]:
    """Every difference, paths in sorted order, then the config."""
    out: list[Difference] = []
    for path in sorted(set(kaniko.files) | set(reference.files)):
        mine, theirs = kaniko.files.get(path), reference.files.get(path)
        if mine is None or theirs is None:
            out.append(
                Difference(
                    path,
                    "presence",
                    mine.describe() if mine else "absent",
                    theirs.describe() if theirs else "absent",
                )
            )
            continue
        out += _entry_differences(path, mine, theirs)
    for key in CONFIG_KEYS:
        out += _config_differences(key, kaniko.config.get(key), reference.config.get(key))
    return out


def _entry_differences(path: str, mine: PathEntry, theirs: PathEntry) -> list[Difference]:
    found = []
    for name in FIELDS:
        a, b = getattr(mine, name), getattr(theirs, name)
        if name == "size" and mine.type == "dir":
            continue
        if a != b:
            show = (lambda v: f"{v:04o}") if name == "mode" else str
            found.append(Difference(path, name, show(a), show(b)))
    return found


def _config_differences(key: str, mine: object, theirs: object) -> list[Difference]:
    if mine == theirs:
        return []
    if key == "Labels" and isinstance(mine, dict) and isinstance(theirs, dict):
        return [
            Difference(
                "config.Labels",
                f"label {name}",
                str(mine.get(name, "absent")),
                str(theirs.get(name, "absent")),
            )
            for name in sorted(set(mine) | set(theirs))
            if mine.get(name) != theirs.get(name)
        ]
    return [Difference(f"config.{key}", key, str(mine), str(theirs))]


def known_reason(
    difference: Difference, kaniko: Snapshot, reference: Snapshot, known: Sequence[KnownDifference] = KNOWN
) -> str | None:
    for entry in known:
        if entry.matches(difference, kaniko, reference):
            return entry.name
    return None


@dataclass(frozen=True)
class Comparison:
    unexpected: list[Difference]
    known: dict[str, int]  # known difference name -> how many times it applied

    @property
    def same(self) -> bool:
        return not self.unexpected


def compare(
    kaniko: Snapshot,
    reference: Snapshot,
    known: Sequence[KnownDifference] = KNOWN,
    ignore: Mapping[str, str] | None = None,
) -> Comparison:
    """``ignore``: paths the case itself says differ run to run (counted as ``ignored:PATH``)."""
    unexpected: list[Difference] = []
    applied: dict[str, int] = {}
    for difference in diff(kaniko, reference):
        if ignore and difference.where in ignore:
            applied[f"ignored:{difference.where}"] = applied.get(f"ignored:{difference.where}", 0) + 1
            continue
        name = known_reason(difference, kaniko, reference, known)
        if name is None:
            unexpected.append(difference)
        else:
            applied[name] = applied.get(name, 0) + 1
    return Comparison(unexpected, applied)
