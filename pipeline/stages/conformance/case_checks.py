"""A case's own checks on the image kaniko built (and on kaniko's output), whatever buildah does."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pipeline.stages.conformance.cases import CaseCheck
from pipeline.stages.conformance.snapshot import Snapshot, normalize_config


def evaluate(checks: Sequence[CaseCheck], image: Snapshot | None, log: str) -> list[str]:
    """The checks that failed, each as one line saying what was expected and what was found."""
    failures: list[str] = []
    for check in checks:
        if check.log:
            if not re.search(check.log, log):
                failures.append(f"kaniko's output has no line matching {check.log!r}")
            continue
        if image is None:
            failures.append("no image to check")
            break
        if check.absent:
            found = image.read(check.absent)
            if found is not None:
                failures.append(f"{check.absent} should be absent, found {found.describe()}")
            continue
        if check.config:
            failures += _config(check, image)
            continue
        failures += _path(check, image)
    return failures


def _config(check: CaseCheck, image: Snapshot) -> list[str]:
    expected = normalize_config({check.config: check.equals}).get(check.config, check.equals)
    found = image.config.get(check.config)
    if found != expected:
        return [f"config {check.config} is {found!r}, expected {expected!r}"]
    return []


def _path(check: CaseCheck, image: Snapshot) -> list[str]:
    entry = image.read(check.path)
    if entry is None:
        return [f"{check.path} is missing"]
    out = []
    if check.type and entry.type != check.type:
        out.append(f"{check.path} is a {entry.type}, expected a {check.type}")
    if check.content is not None:
        want = hashlib.sha256(check.content.encode()).hexdigest()
        if entry.type != "file" or entry.sha256 != want:
            out.append(f"{check.path} does not hold {check.content!r} ({entry.describe()})")
    if check.mode is not None and entry.mode != check.mode:
        out.append(f"{check.path} has mode {entry.mode:04o}, expected {check.mode:04o}")
    if check.owner and f"{entry.uid}:{entry.gid}" != check.owner:
        out.append(f"{check.path} is owned by {entry.uid}:{entry.gid}, expected {check.owner}")
    if check.target is not None and entry.target != check.target:
        out.append(f"{check.path} points to {entry.target!r}, expected {check.target!r}")
    return out
