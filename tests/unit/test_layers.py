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


def test_nothing_in_the_package_imports_upward() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_lazy_upward_import_breaks_the_contract_and_is_named(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    digest = tmp_path / "pipeline" / "oci" / "digest.py"
    digest.write_text(
        digest.read_text()
        + "\n\ndef _upward() -> None:\n    from pipeline.stages import fork  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pipeline.oci is not allowed to import pipeline.stages" in result.stdout
    assert "pipeline.oci.digest -> pipeline.stages.fork" in result.stdout
