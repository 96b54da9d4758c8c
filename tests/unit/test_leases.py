"""Leases on podman images (pipeline/services/leases.py), with real flock locks in a temporary directory:
the same content under two registries' names is one image in podman's storage, so a lease on one name
keeps a removal by the other name waiting until the lease ends."""

from __future__ import annotations

from pathlib import Path

from pipeline.services.leases import Leases

DIGEST = "sha256:" + "ab" * 32
HERE, THERE = f"127.0.0.1:5001/kaniko-executor@{DIGEST}", f"127.0.0.1:5002/kaniko-executor@{DIGEST}"


def test_a_removal_by_another_name_of_the_same_digest_waits_for_the_lease(tmp_path: Path) -> None:
    leases, removed = Leases(tmp_path / "leases"), []
    with leases.hold(HERE, exists=lambda: True, pull=lambda: None, remove=lambda: removed.append(HERE)):
        # another run (or a test's clean-up) removes the image it pushed under its own registry's name
        leases.discard(THERE, lambda: removed.append(THERE), pulled_or_not=True)
        assert removed == []  # the content is still in use under HERE
    assert removed == [HERE]  # the last lease out removes it, as asked


def test_a_removal_with_no_lease_happens_at_once_and_tags_are_their_own_images(tmp_path: Path) -> None:
    leases, removed = Leases(tmp_path / "leases"), []
    with leases.hold("localhost/app:1", exists=lambda: True, pull=lambda: None, remove=lambda: None):
        leases.discard(THERE, lambda: removed.append(THERE), pulled_or_not=True)
        leases.discard("localhost/app:2", lambda: removed.append("app:2"), pulled_or_not=True)
    assert removed == [THERE, "app:2"]


def test_an_image_found_in_storage_is_not_removed_by_the_lease(tmp_path: Path) -> None:
    leases, removed = Leases(tmp_path / "leases"), []
    with leases.hold(HERE, exists=lambda: True, pull=lambda: None, remove=lambda: removed.append(HERE)):
        pass
    leases.discard(THERE, lambda: removed.append(THERE))  # a clean-up: only what a run pulled
    assert removed == []
