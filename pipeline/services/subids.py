"""Subordinate id ranges (/etc/subuid, /etc/subgid): who has which, and a free range for a new one.

A new range is chosen as ``useradd`` chooses it: ``SUB_UID_COUNT`` ids between ``SUB_UID_MIN`` and
``SUB_UID_MAX`` of /etc/login.defs (``SUB_GID_*`` for groups; shadow's defaults when unset), clear of
every range already given and of every user (group) id in use, so no container's root maps onto a
real account.
"""

from __future__ import annotations

import grp
import pwd
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ToolError

SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")
LOGIN_DEFS = Path("/etc/login.defs")
_DEFAULTS = {"MIN": 100000, "MAX": 600100000, "COUNT": 65536}  # shadow's, as useradd(8) documents


@dataclass(frozen=True)
class Limits:
    low: int
    high: int
    count: int


def entries(path: Path) -> list[tuple[str, int, int]]:
    """(owner, start, count) of each well-formed line of ``path``; none when it does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def subid_ranges(path: Path, user: pwd.struct_passwd) -> list[tuple[int, int]]:
    """The (start, count) ranges ``path`` gives ``user`` (by name or uid)."""
    return [
        (start, count) for owner, start, count in entries(path) if owner in (user.pw_name, str(user.pw_uid))
    ]


def limits(kind: str, login_defs: Path | None = None) -> Limits:
    """SUB_UID_MIN/MAX/COUNT (``kind`` "uid") or SUB_GID_* (``kind`` "gid") from login.defs."""
    values = dict(_DEFAULTS)
    login_defs = login_defs or LOGIN_DEFS
    try:
        lines = login_defs.read_text().splitlines()
    except OSError:
        lines = []
    prefix = f"SUB_{kind.upper()}_"
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0].startswith(prefix) and words[1].isdigit():
            key = words[0].removeprefix(prefix)
            if key in values:
                values[key] = int(words[1])
    return Limits(values["MIN"], values["MAX"], values["COUNT"])


def ids_in_use(kind: str) -> set[int]:
    """Every user id (``kind`` "uid") or group id ("gid") the system's databases list."""
    if kind == "uid":
        return {entry.pw_uid for entry in pwd.getpwall()}
    return {entry.gr_gid for entry in grp.getgrall()}


def free_range(
    path: Path, kind: str, *, login_defs: Path | None = None, in_use: set[int] | None = None
) -> tuple[int, int]:
    """The first (start, end) of ``count`` ids within the limits that overlaps no range and no id in use."""
    bounds = limits(kind, login_defs)
    used = ids_in_use(kind) if in_use is None else in_use
    taken = sorted([(start, start + size - 1) for _, start, size in entries(path)] + [(i, i) for i in used])
    start = bounds.low
    for first, last in taken:
        if first > start + bounds.count - 1:
            break  # the gap before this one is wide enough
        start = max(start, last + 1)
    end = start + bounds.count - 1
    if end > bounds.high:
        raise ToolError(
            f"no {bounds.count} free sub{kind}s left between SUB_{kind.upper()}_MIN {bounds.low} and "
            f"SUB_{kind.upper()}_MAX {bounds.high} ({login_defs or LOGIN_DEFS}) beside the ranges in {path}",
            hint=f"raise SUB_{kind.upper()}_MAX in {login_defs or LOGIN_DEFS}, or remove unused ranges from {path}",
        )
    return start, end
