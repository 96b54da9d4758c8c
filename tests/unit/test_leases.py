"""Leases on images (pipeline/services/leases.py), with real flock locks in a temporary directory and a
storage that finds images as podman does: by any name it carries and by any digest it was pulled by.
Two leases in one process are two runs: each holds its own open lock file, and flock locks belong to
the open file, not the process.

The bug these guard (issue 20, item 3): leases keyed by the name a run asked for; a run that found the
executor under its platform manifest's digest pulled nothing, and the run that pulled it by its index
digest removed it at its end while the first still used it ("image not known")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.services.leases import Leases

INDEX, MANIFEST = "sha256:" + "1" * 64, "sha256:" + "2" * 64
IMAGE_ID = "9" * 64
BY_INDEX = f"127.0.0.1:5001/kaniko-executor@{INDEX}"
BY_MANIFEST = f"127.0.0.1:5002/kaniko-executor@{MANIFEST}"
BY_TAG = "127.0.0.1:5002/kaniko-executor:v1"


class Storage:
    """Images by id, with their names and the digests they were pulled by, as podman keeps them."""

    def __init__(self) -> None:
        self.registry = {BY_INDEX: (IMAGE_ID, (INDEX, MANIFEST)), BY_MANIFEST: (IMAGE_ID, (MANIFEST,))}
        self.registry[BY_TAG] = (IMAGE_ID, (MANIFEST,))
        self.images: dict[str, list[str]] = {}
        self.digests: dict[str, set[str]] = {}
        self.removed: list[str] = []

    def image_id(self, name: str) -> str | None:
        for image_id, names in self.images.items():
            digest = name.rpartition("@")[2]
            if name in (image_id, *names) or digest in self.digests[image_id]:
                return image_id
        return None

    def image_ids(self) -> frozenset[str]:
        return frozenset(self.images)

    def pull(self, name: str) -> str:
        image_id, digests = self.registry[name]
        self.images.setdefault(image_id, []).append(name)
        self.digests.setdefault(image_id, set()).update(digests)
        return image_id

    def names(self, image_id: str) -> Sequence[str]:
        return list(self.images.get(image_id, []))

    def untag(self, image_id: str, name: str) -> None:
        if name in self.images.get(image_id, []):
            self.images[image_id].remove(name)

    def remove(self, image_id: str) -> None:
        self.images.pop(image_id, None)
        self.removed.append(image_id)


def test_a_run_using_the_image_by_another_digest_keeps_it_after_the_run_that_pulled_it_ends(
    tmp_path: Path,
) -> None:
    storage = Storage()
    leases = Leases(tmp_path / "leases", storage)
    first = leases.hold(BY_INDEX)
    assert first.__enter__() is True  # pulled
    with leases.hold(BY_MANIFEST) as pulled:
        assert pulled is False  # found: the index's pull brought the platform manifest's digest too
        first.__exit__(None, None, None)  # the run that pulled it ends first
        assert storage.image_id(BY_MANIFEST) == IMAGE_ID
        assert storage.names(IMAGE_ID) == [BY_INDEX] and storage.removed == []
    # the last run out untags what runs added and removes what a run brought in
    assert storage.images == {} and storage.removed == [IMAGE_ID]
    assert sorted(p.name for p in (tmp_path / "leases").iterdir()) == ["storage.lock"]


def test_each_name_a_run_added_goes_and_the_image_goes_with_the_last(tmp_path: Path) -> None:
    storage = Storage()
    leases = Leases(tmp_path / "leases", storage)
    with leases.hold(BY_TAG) as tag_pulled, leases.hold(BY_INDEX) as index_pulled:
        assert tag_pulled and index_pulled  # neither name found: each pulled, one image
        assert storage.names(IMAGE_ID) == [BY_TAG, BY_INDEX]
    assert storage.images == {} and storage.removed == [IMAGE_ID]


def test_an_image_that_was_there_before_keeps_its_own_names_and_stays(tmp_path: Path) -> None:
    storage = Storage()
    storage.pull(BY_MANIFEST)  # the user's own, before any run
    leases = Leases(tmp_path / "leases", storage)
    with leases.hold(BY_TAG) as pulled:  # a name podman does not find: pulled, onto the same image
        assert pulled and storage.names(IMAGE_ID) == [BY_MANIFEST, BY_TAG]
    assert storage.names(IMAGE_ID) == [BY_MANIFEST] and storage.removed == []  # only the run's name went
    leases.discard(BY_MANIFEST)  # a clean-up removes only what runs added
    assert storage.names(IMAGE_ID) == [BY_MANIFEST] and storage.removed == []


def test_a_removal_by_another_name_waits_for_the_lease_and_spares_other_names(tmp_path: Path) -> None:
    storage = Storage()
    leases = Leases(tmp_path / "leases", storage)
    with leases.hold(BY_INDEX):
        storage.pull(BY_TAG)  # a test's own name on the same image
        leases.discard(BY_MANIFEST, pulled_or_not=True)  # a clean-up by a digest the image was pulled by
        leases.discard(BY_TAG, pulled_or_not=True)
        assert storage.removed == [] and storage.names(IMAGE_ID) == [BY_INDEX, BY_TAG]  # in use
    assert storage.images == {} and storage.removed == [IMAGE_ID]
