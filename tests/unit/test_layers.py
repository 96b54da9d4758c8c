"""The layers of docs/architecture.md, checked by import-linter's `layers` contract in pyproject.toml.

Lazy imports inside functions count as much as module-level ones: a task that imports a stage only
when it runs still depends on it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_nothing_in_the_package_imports_upward_and_the_image_assembly_is_offline() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def _copy(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")


def test_a_lazy_upward_import_breaks_the_contract_and_is_named(tmp_path: Path) -> None:
    _copy(tmp_path)
    digest = tmp_path / "pipeline" / "oci" / "digests.py"
    digest.write_text(
        digest.read_text()
        + "\n\ndef _upward() -> None:\n    from pipeline.stages import fork  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pipeline.oci is not allowed to import pipeline.stages" in result.stdout
    assert "pipeline.oci.digests -> pipeline.stages.fork" in result.stdout


def test_the_image_assembly_reaching_the_registry_client_breaks_its_contract(tmp_path: Path) -> None:
    """pipeline.image sits above pipeline.registry in the layers, so only the forbidden contract stops
    it pulling busybox itself (as it did before the build stage fetched it)."""
    _copy(tmp_path)
    busybox = tmp_path / "pipeline" / "image" / "busybox.py"
    busybox.write_text(
        busybox.read_text()
        + "\n\ndef _pull() -> None:\n    from pipeline.registry.client import Client  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 kept, 1 broken" in result.stdout
    assert "pipeline.image is not allowed to import pipeline.registry" in result.stdout
    assert "pipeline.image.busybox -> pipeline.registry.client" in result.stdout
