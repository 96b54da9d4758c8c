"""Podman's image storage as leases see it (pipeline/services/leases.py): an image's id, its names,
the untag and the removal, each one podman command.

:class:`pipeline.services.podman.Podman` lends images through it (``borrowed``, ``discard``, ``rmi``).
An image is removed by id and never forced: podman refuses while a container uses it, and leases
remove it only when no name is left on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ContainerError
from pipeline.services.leases import DIRECTORY, Leases

if TYPE_CHECKING:
    from pipeline.services.podman import Podman

LISTING_ATTEMPTS = 5


class PodmanImages:
    """The images of ``podman``'s storage; a pull uses ``tls_verify`` and ``auth`` (see ``Podman.pull``)."""

    def __init__(
        self, podman: Podman, *, tls_verify: bool = True, auth: Mapping[str, Any] | None = None
    ) -> None:
        self.podman = podman
        self.tls_verify = tls_verify
        self.auth = auth

    def image_id(self, name: str) -> str | None:
        result = self.podman.command(
            ["image", "inspect", "--format={{.Id}}", name], what=f"looking up image {name}", check=False
        )
        found = result.stdout.strip()
        return found if result.returncode == 0 and found else None

    def image_ids(self) -> frozenset[str]:
        """Every image id; podman's listing fails while another process removes an image (it reads each
        image's labels), so it is tried again; if it keeps failing, none (a run's pull then counts as
        bringing its image in: removed at the end only if no name is left on it)."""
        for _ in range(LISTING_ATTEMPTS):
            result = self.podman.command(
                ["images", "--all", "--quiet", "--no-trunc"], what="listing images", check=False
            )
            if result.returncode == 0:
                return frozenset(line.removeprefix("sha256:") for line in result.stdout.split())
            time.sleep(0.2)
        return frozenset()

    def pull(self, name: str) -> str:
        self.podman.progress.step(f"pulling {name}")
        self.podman.pull(name, tls_verify=self.tls_verify, auth=self.auth)
        found = self.image_id(name)  # the id podman now finds by that name, whatever pull printed
        if found is None:
            raise ContainerError(
                f"podman pulled {name} but does not find it by that name",
                hint=f"see `podman images`; this ran {self.podman.describe()}",
            )
        return found

    def names(self, image_id: str) -> Sequence[str]:
        """Its tags and digest references; none once it is gone; itself when podman cannot describe an image
        it still finds (then it is kept, as an image with a name is)."""
        result = self.podman.command(
            ["image", "inspect", "--format=json", image_id], what=f"inspecting image {image_id}", check=False
        )
        try:
            found = json.loads(result.stdout)[0] if result.returncode == 0 else None
        except (ValueError, IndexError, KeyError):
            found = None
        if not isinstance(found, dict):
            return [] if self.image_id(image_id) is None else [image_id]
        return [*(found.get("RepoTags") or []), *(found.get("RepoDigests") or [])]

    def untag(self, image_id: str, name: str) -> None:
        self.podman.command(["untag", image_id, name], what=f"untagging {name}", check=False)

    def remove(self, image_id: str) -> None:
        self.podman.command(["rmi", image_id], what=f"removing image {image_id}", check=False)


def leases(podman: Podman, *, tls_verify: bool = True, auth: Mapping[str, Any] | None = None) -> Leases:
    """The leases on ``podman``'s images, kept beside its storage (its run root)."""
    return Leases(Path(podman.run_root()) / DIRECTORY, PodmanImages(podman, tls_verify=tls_verify, auth=auth))
