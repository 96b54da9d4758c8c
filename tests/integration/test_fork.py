"""The fork stage against real git repositories with awkward tag sets."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import git
import pytest

from pipeline.errors import ForkError, ReleaseSelectionError, UsageError
from pipeline.source import pinfile
from pipeline.stages import fork
from tests.support.cli import run_invoke
from tests.support.gitrepos import MODULE, UpstreamRepo


@pytest.fixture
def upstream(tmp_path: Path) -> UpstreamRepo:
    repo = UpstreamRepo.create(tmp_path / "upstream")
    repo.release("v0.1.0")
    repo.release("v1.9.2")
    repo.release("v1.25.16", annotated=True)
    repo.release("v1.26.0-rc.1")
    repo.tag("v")  # the real fork has a tag named just "v"
    repo.tag("latest")
    repo.tag("nightly-2024-01-01")
    repo.tag("v1.2")
    return repo


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    path = tmp_path / "patches"
    path.mkdir()
    return path


def pin_for(upstream: UpstreamRepo, tag: str) -> pinfile.Pin:
    commit = upstream.repo.tags[tag].commit.hexsha
    return pinfile.Pin(url=str(upstream.path), tag=tag, commit=commit)


def test_latest_picks_highest_semver_release(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    result = fork.checkout(
        ref="latest", pin=pin_for(upstream, "v1.9.2"), patches_dir=patches, cache_dir=cache_dir
    )
    assert result.tag == "v1.25.16"
    assert result.version == "1.25.16"
    assert result.commit == upstream.commits["release v1.25.16"]
    assert result.module == MODULE
    assert result.commit_time == upstream.repo.commit(result.commit).committed_date
    assert (result.path / "VERSION").read_text() == "v1.25.16\n"
    assert not result.pinned
    assert result.path.is_relative_to(cache_dir)


def test_prerelease_only_when_asked(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    result = fork.checkout(
        ref="latest",
        pin=pin_for(upstream, "v1.9.2"),
        patches_dir=patches,
        cache_dir=cache_dir,
        prerelease=True,
    )
    assert result.tag == "v1.26.0-rc.1"
    assert result.version == "1.26.0-rc.1"


def test_pinned_tag_is_checked_out(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    current = pin_for(upstream, "v1.9.2")
    result = fork.checkout(ref=current.tag, pin=current, patches_dir=patches, cache_dir=cache_dir)
    assert (result.tag, result.commit, result.pinned) == ("v1.9.2", current.commit, True)
    assert (result.path / "VERSION").read_text() == "v1.9.2\n"


def test_ref_without_v_finds_the_v_tag(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    result = fork.checkout(
        ref="1.9.2", pin=pin_for(upstream, "v0.1.0"), patches_dir=patches, cache_dir=cache_dir
    )
    assert result.tag == "v1.9.2"


def test_moved_tag_is_refused(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    current = pin_for(upstream, "v1.25.16")
    fork.checkout(ref="v1.25.16", pin=current, patches_dir=patches, cache_dir=cache_dir)
    moved_to = upstream.commit("sneaky change")
    upstream.tag("v1.25.16", moved_to, force=True)
    with pytest.raises(ForkError) as info:
        fork.checkout(ref="v1.25.16", pin=current, patches_dir=patches, cache_dir=cache_dir)
    message = str(info.value)
    assert "the tag was moved" in message
    assert moved_to in message and current.commit in message
    # `latest` resolving to the pinned tag is checked the same way.
    with pytest.raises(ForkError, match="the tag was moved"):
        fork.checkout(ref="latest", pin=current, patches_dir=patches, cache_dir=cache_dir)


def test_unknown_ref_lists_the_newest_tags(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    with pytest.raises(ReleaseSelectionError) as info:
        fork.checkout(ref="v9.9.9", pin=pin_for(upstream, "v1.9.2"), patches_dir=patches, cache_dir=cache_dir)
    message = str(info.value)
    assert "has no tag 'v9.9.9'" in message
    assert "v1.26.0-rc.1, v1.25.16, v1.9.2, v0.1.0" in message


def test_non_semver_tag_is_refused_as_ref(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    with pytest.raises(ReleaseSelectionError, match="not a semver release tag"):
        fork.checkout(
            ref="nightly-2024-01-01",
            pin=pin_for(upstream, "v1.9.2"),
            patches_dir=patches,
            cache_dir=cache_dir,
        )


def test_no_release_tags_at_all(tmp_path: Path, patches: Path, cache_dir: Path) -> None:
    bare = UpstreamRepo.create(tmp_path / "bare")
    bare.tag("v")
    bare.tag("v1.2")
    sha = bare.repo.head.commit.hexsha
    with pytest.raises(ReleaseSelectionError, match="has no semver release tag among its 2 tags"):
        fork.checkout(
            ref="latest",
            pin=pinfile.Pin(str(bare.path), "v1.0.0", sha),
            patches_dir=patches,
            cache_dir=cache_dir,
        )


def test_second_run_fetches_into_the_same_clone(
    upstream: UpstreamRepo, patches: Path, cache_dir: Path
) -> None:
    current = pin_for(upstream, "v1.9.2")
    first = fork.checkout(ref="latest", pin=current, patches_dir=patches, cache_dir=cache_dir)
    marker = first.path / ".git" / "kaniko-pipeline-marker"
    marker.write_text("this clone must be reused\n")
    upstream.release("v1.25.17")
    second = fork.checkout(ref="latest", pin=current, patches_dir=patches, cache_dir=cache_dir)
    assert second.path == first.path
    assert marker.exists(), "the cached clone was replaced instead of fetched into"
    assert second.tag == "v1.25.17"
    # A tag deleted upstream disappears from the cache too.
    upstream.repo.git.tag("-d", "v1.25.17")
    third = fork.checkout(ref="latest", pin=current, patches_dir=patches, cache_dir=cache_dir)
    assert third.tag == "v1.25.16"


def test_checkout_is_clean_after_local_edits(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    current = pin_for(upstream, "v1.9.2")
    first = fork.checkout(ref="v1.9.2", pin=current, patches_dir=patches, cache_dir=cache_dir)
    (first.path / "VERSION").write_text("edited\n")
    (first.path / "stray.txt").write_text("left over\n")
    second = fork.checkout(ref="v1.9.2", pin=current, patches_dir=patches, cache_dir=cache_dir)
    assert (second.path / "VERSION").read_text() == "v1.9.2\n"
    assert not (second.path / "stray.txt").exists()


def test_patches_apply_in_name_order(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    (patches / "001-first.patch").write_text(
        "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n kaniko\n+first\n"
    )
    (patches / "002-second.patch").write_text(
        "--- a/README.md\n+++ b/README.md\n@@ -1,2 +1,3 @@\n kaniko\n first\n+second\n"
    )
    (patches / "notes.txt").write_text("not a patch\n")
    result = fork.checkout(
        ref="v1.9.2", pin=pin_for(upstream, "v1.9.2"), patches_dir=patches, cache_dir=cache_dir
    )
    assert (result.path / "README.md").read_text() == "kaniko\nfirst\nsecond\n"
    assert result.patches == ("001-first.patch", "002-second.patch")
    # A second run starts from the clean tag again, so patches never apply twice.
    again = fork.checkout(
        ref="v1.9.2", pin=pin_for(upstream, "v1.9.2"), patches_dir=patches, cache_dir=cache_dir
    )
    assert (again.path / "README.md").read_text() == "kaniko\nfirst\nsecond\n"


def test_patch_that_does_not_apply(upstream: UpstreamRepo, patches: Path, cache_dir: Path) -> None:
    (patches / "001-good.patch").write_text(
        "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n kaniko\n+good\n"
    )
    (patches / "002-bad.patch").write_text(
        "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n something else entirely\n+bad\n"
    )
    with pytest.raises(ForkError) as info:
        fork.checkout(ref="v1.9.2", pin=pin_for(upstream, "v1.9.2"), patches_dir=patches, cache_dir=cache_dir)
    assert "patch 002-bad.patch does not apply to v1.9.2" in str(info.value)
    checkout = next((cache_dir / "forks").glob("upstream-*/"))
    with git.Repo(checkout) as clone:
        status = clone.git.status("--porcelain")
    assert status == "", "a failed patch must leave the checkout unpatched, not half-patched"


def test_unreachable_url(tmp_path: Path, patches: Path, cache_dir: Path) -> None:
    sha = "0" * 40
    with pytest.raises(ForkError) as info:
        fork.checkout(
            ref="latest",
            pin=pinfile.Pin("http://127.0.0.1:9/kaniko.git", "v1.0.0", sha),
            patches_dir=patches,
            cache_dir=cache_dir,
        )
    assert "could not clone the fork from http://127.0.0.1:9/kaniko.git" in str(info.value)
    assert "git exit status 128" in str(info.value)
    # git's own words, not only its exit status
    assert "Failed to connect to 127.0.0.1 port 9" in str(info.value)
    assert "KANIKO_FORK_URL" in str(info.value)
    assert not any((cache_dir / "forks").glob("kaniko-*/")), "no half-made clone is left in the cache"


def test_missing_local_path(tmp_path: Path, patches: Path, cache_dir: Path) -> None:
    with pytest.raises(UsageError, match="names a local path that does not exist"):
        fork.checkout(
            ref="latest",
            pin=pinfile.Pin(str(tmp_path / "nope"), "v1", "0" * 40),
            patches_dir=patches,
            cache_dir=cache_dir,
        )


def test_local_directory_that_is_not_a_repository(tmp_path: Path, patches: Path, cache_dir: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(ForkError, match="could not clone the fork") as info:
        fork.checkout(
            ref="latest",
            pin=pinfile.Pin(str(tmp_path / "plain"), "v1", "0" * 40),
            patches_dir=patches,
            cache_dir=cache_dir,
        )
    assert "fatal: repository" in str(info.value) and "does not exist" in str(info.value)


def test_file_url_and_bare_mirror(
    upstream: UpstreamRepo, tmp_path: Path, patches: Path, cache_dir: Path
) -> None:
    mirror = tmp_path / "mirror.git"
    git.Repo.clone_from(upstream.path, mirror, mirror=True)
    result = fork.checkout(
        ref="latest",
        pin=pin_for(upstream, "v0.1.0"),
        url=f"file://{mirror}",
        patches_dir=patches,
        cache_dir=cache_dir,
    )
    assert result.tag == "v1.25.16"
    assert result.url == f"file://{mirror}"


def test_not_a_go_module(tmp_path: Path, patches: Path, cache_dir: Path) -> None:
    other = UpstreamRepo.create(tmp_path / "other")
    (other.path / "go.mod").unlink()
    other.release("v1.0.0")
    with pytest.raises(ForkError, match="has no go.mod"):
        fork.checkout(ref="latest", pin=pin_for(other, "v1.0.0"), patches_dir=patches, cache_dir=cache_dir)


# -- the task, as a user runs it ----------------------------------------------------------------


def run_task(args: list[str], cache_dir: Path, fork_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INVOKE_PIPELINE_CACHE_DIR": str(cache_dir),
        "INVOKE_PIPELINE_FORK_DIR": str(fork_dir),
    }
    env.pop("KANIKO_FORK_URL", None)
    return run_invoke(args, env=env)


@pytest.fixture
def fork_dir(tmp_path: Path, upstream: UpstreamRepo) -> Path:
    path = tmp_path / "forkdir"
    (path / "patches").mkdir(parents=True)
    pinfile.save(path / "pin.json", pin_for(upstream, "v1.9.2"))
    return path


def test_task_json(upstream: UpstreamRepo, fork_dir: Path, cache_dir: Path) -> None:
    result = run_task(["fork", "--ref", "latest", "--json"], cache_dir, fork_dir)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert {"url", "tag", "commit", "version", "commit_time", "module", "path"} <= set(data)
    assert (data["tag"], data["version"], data["module"]) == ("v1.25.16", "1.25.16", MODULE)
    assert len(data["commit"]) == 40 and isinstance(data["commit_time"], int)
    assert "==> " in result.stderr  # progress goes to stderr
    record = json.loads((cache_dir / "runs" / "last.json").read_text())
    assert record["fork"]["commit"] == data["commit"]


def test_task_update_pin(upstream: UpstreamRepo, fork_dir: Path, cache_dir: Path) -> None:
    result = run_task(["fork", "--ref", "latest", "--update-pin", "--json"], cache_dir, fork_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pin_updated"] is True
    written = pinfile.load(fork_dir / "pin.json")
    assert (written.tag, written.commit) == ("v1.25.16", upstream.commits["release v1.25.16"])
    assert written.url == str(upstream.path)
    again = run_task(["fork", "--ref", "latest", "--update-pin", "--json"], cache_dir, fork_dir)
    assert json.loads(again.stdout)["pin_updated"] is False


def test_task_errors_are_one_message_without_traceback(
    upstream: UpstreamRepo, fork_dir: Path, cache_dir: Path
) -> None:
    result = run_task(["fork", "--ref", "v7.7.7", "--json"], cache_dir, fork_dir)
    assert result.returncode == 2  # a tag that does not exist is bad input
    assert result.stdout == ""
    assert "error: the fork at" in result.stderr and "has no tag 'v7.7.7'" in result.stderr
    assert "Traceback" not in result.stderr

    bad_config = run_task(["fork"], cache_dir, fork_dir.parent / "missing")
    assert bad_config.returncode == 2
    assert "pin.json does not exist" in bad_config.stderr and "Traceback" not in bad_config.stderr


def test_task_bad_config_value_is_named(fork_dir: Path, cache_dir: Path) -> None:
    env_result = run_invoke(
        ["fork"],
        env={
            **os.environ,
            "INVOKE_PIPELINE_PLATFORMS": "linux/m68k",
            "INVOKE_PIPELINE_FORK_DIR": str(fork_dir),
        },
    )
    assert env_result.returncode == 2
    assert "unknown platform 'linux/m68k' in pipeline.platforms" in env_result.stderr
    assert "Traceback" not in env_result.stderr
