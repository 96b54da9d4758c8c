"""What tests share lives in tests/conftest.py or tests/support/: no test module imports from another.

A fixture imported into a test module is a second definition of it: a session fixture imported into
three modules is set up three times (three local Sigstore instances, three `npm ci`), and which one a
test gets depends on where it lives.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TEST_PACKAGES = ("tests.unit", "tests.integration", "tests.e2e")


def imports_of_test_modules(path: Path) -> list[str]:
    """The test modules (of TEST_PACKAGES) that the file at ``path`` imports, by dotted name."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name.startswith(tuple(p + "." for p in TEST_PACKAGES))]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imports_of_test_modules(path))
    }
    assert offenders == {}


def test_the_check_finds_an_import_from_a_test_module(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "from tests.integration.test_release import fork  # noqa: F401\nimport tests.unit.test_pin\n"
    )
    assert imports_of_test_modules(module) == [
        "tests.integration.test_release",
        "tests.integration.test_release.fork",
        "tests.unit.test_pin",
    ]
