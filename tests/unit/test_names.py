"""Names that tell (issue 22): a name in the package means one thing, wherever it is read.

Read from the source with ast (nothing is imported): no two modules share a basename, a module and a
package included; no two public classes share a name; no module shadows an import name of one of the
project's dependencies; the package's own modules and names are imported under their own names, never
``as`` another; the variant names are defined once.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipeline"
VARIANT_NAMES = frozenset({"executor", "debug", "slim", "warmer"})


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _clashes(names: dict[str, list[str]]) -> list[str]:
    return [f"{name}: {', '.join(sorted(where))}" for name, where in sorted(names.items()) if len(where) > 1]


def _basenames() -> dict[str, list[str]]:
    """Each module's and each subpackage's last name, with where it is."""
    names: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        if path.name == "__init__.py":
            if path.parent != PACKAGE:
                names[path.parent.name].append(_dotted(path) + "/")
        else:
            names[path.stem].append(_dotted(path))
    return names


def test_no_two_modules_or_packages_share_a_name() -> None:
    clashes = _clashes(_basenames())
    assert not clashes, "modules or packages sharing a name:\n" + "\n".join(clashes)


def test_no_two_public_classes_share_a_name() -> None:
    classes: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        for node in _tree(path).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                classes[node.name].append(_dotted(path))
    clashes = _clashes(classes)
    assert not clashes, "public classes sharing a name:\n" + "\n".join(clashes)


def _dependency_import_names() -> set[str]:
    """The top-level import names of every dependency pyproject.toml declares (runtime and test)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared.extend(extra)
    wanted = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in declared}
    names: set[str] = set()
    for top, distributions in metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in wanted for d in distributions) and not top.startswith("_"):
            names.add(top)
    return names


def test_the_dependencies_import_names_are_known() -> None:
    """The check below is only as good as this list: the libraries the package uses are in it."""
    assert {"sigstore", "requests", "git", "invoke", "yaml", "semver"} <= _dependency_import_names()


def test_no_module_shadows_a_dependency() -> None:
    dependencies = _dependency_import_names()
    shadows = [
        f"{name} (the dependency's import name): {', '.join(sorted(where))}"
        for name, where in sorted(_basenames().items())
        if name in dependencies
    ]
    assert not shadows, "modules or packages named like a dependency:\n" + "\n".join(shadows)


def _own_renames(path: Path) -> Iterator[str]:
    """`import pipeline.x as y`, `from pipeline.x import y as z` and relative `from . import x as y`."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name.split(".")[0] == "pipeline":
                    yield f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name} as {alias.asname}"
        elif isinstance(node, ast.ImportFrom):
            own = node.level > 0 or (node.module or "").split(".")[0] == "pipeline"
            for alias in node.names:
                if own and alias.asname and alias.asname != alias.name:
                    source = "." * node.level + (node.module or "")
                    yield (
                        f"{path.relative_to(ROOT)}:{node.lineno}: "
                        f"from {source} import {alias.name} as {alias.asname}"
                    )


def test_the_packages_own_modules_and_names_are_imported_under_their_own_names() -> None:
    files = [*_modules(), ROOT / "tasks.py", *sorted((ROOT / "tests").rglob("*.py"))]
    renames = [line for path in files for line in _own_renames(path)]
    assert not renames, f"{len(renames)} imports rename the package's own modules or names:\n" + "\n".join(
        renames
    )


def _variant_tuples(path: Path) -> Iterator[str]:
    for node in _tree(path).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        named = any(isinstance(t, ast.Name) and t.id == "VARIANTS" for t in targets)
        literal = (
            isinstance(value, ast.Tuple | ast.List | ast.Set)
            and {e.value for e in value.elts if isinstance(e, ast.Constant)} == VARIANT_NAMES
        )
        if named or literal:
            yield f"{_dotted(path)}:{node.lineno}"


def test_the_variant_names_are_defined_once() -> None:
    definitions = [where for path in [*_modules(), ROOT / "tasks.py"] for where in _variant_tuples(path)]
    assert len(definitions) == 1, "the four variant names are defined at: " + ", ".join(definitions)
