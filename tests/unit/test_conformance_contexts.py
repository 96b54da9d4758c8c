"""Case contexts as git records them: a checkout made under umask 0002 (0775 folders, 0664 files), or a
``git archive`` extracted as root, gives the builders the same context as one made under umask 0022.

Found by an ordinary user's `invoke test-e2e` on the real fork: scratch-copy and copy-chown-chmod
"differed" (``/dir: mode kaniko=0775 buildah=0755``) because kaniko copies the source folder's mode
where buildah makes the folder 0755, and the project's checkout had 0775 folders."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

from pipeline.stages.conformance import cases, contexts, memo

SUITE_CASE = cases.CASES_DIR / "scratch-copy"


def _modes(folder: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in ["", *dirs, *files]:
            path = Path(root) / name
            out[str(path.relative_to(folder))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return out


def _checkout(tmp_path: Path, name: str, umask: int) -> Path:
    """The repository's scratch-copy case, copied as a checkout under ``umask`` would have it."""
    folder = tmp_path / name / "scratch-copy"
    shutil.copytree(SUITE_CASE, folder)
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for file in files:
            os.chmod(Path(root) / file, 0o666 & ~umask)
    (folder / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(folder / "run.sh", 0o777 & ~umask)
    return folder


def test_a_checkout_under_umask_0002_is_built_from_gits_modes_and_left_as_it_was(tmp_path: Path) -> None:
    loose = _checkout(tmp_path, "loose", 0o002)
    before = _modes(loose)
    assert before["dir"] == "0o775"

    [case] = contexts.committed([cases.load_case(loose)], tmp_path / "cache")

    assert case.directory != loose and case.directory.name == loose.name
    built = _modes(case.directory)
    assert built["."] == built["dir"] == "0o755"
    assert built["hello.txt"] == "0o644" and built["run.sh"] == "0o755"
    assert _modes(loose) == before  # the user's checkout is not changed
    # the same copy on the next run, not a second one
    [again] = contexts.committed([cases.load_case(loose)], tmp_path / "cache")
    assert again.directory == case.directory
    assert len(list((tmp_path / "cache" / "conformance" / "contexts").iterdir())) == 1


def test_both_checkouts_are_the_same_case_for_the_builders_and_the_memo(tmp_path: Path) -> None:
    strict, loose = _checkout(tmp_path, "strict", 0o022), _checkout(tmp_path, "loose", 0o002)
    bases = {"busybox": "sha256:" + "0" * 64}
    keys = []
    for folder in (strict, loose):
        [case] = contexts.committed([cases.load_case(folder)], tmp_path / "cache")
        keys.append(memo.case_key(case, bases))
        assert _modes(case.directory) == _modes(strict)
    assert keys[0] == keys[1]
    # a checkout that already has git's modes is used in place: nothing is copied
    [case] = contexts.committed([cases.load_case(strict)], tmp_path / "cache")
    assert case.directory == strict


def test_a_users_own_cases_folder_is_built_as_it_is(tmp_path: Path) -> None:
    loose = _checkout(tmp_path, "loose", 0o002)
    mine = replace(cases.load_case(loose), suite=contexts.USERS_OWN)
    [case] = contexts.committed([mine], tmp_path / "cache")
    assert case.directory == loose
    assert not (tmp_path / "cache").exists()
