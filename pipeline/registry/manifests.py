"""Manifests: ``/v2/<name>/manifests/<reference>``, read within the 4 MiB limit and checked against
the digest asked for; written with Content-Type equal to their mediaType.
"""

from __future__ import annotations

import requests

from pipeline.errors import ImageError, RegistryError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import MAX_MANIFEST_BYTES, parse
from pipeline.registry.api import RegistryAPI
from pipeline.registry.reference import Reference

ACCEPT = ", ".join(
    [mediatype.OCI_INDEX, mediatype.OCI_MANIFEST, mediatype.DOCKER_MANIFEST_LIST, mediatype.DOCKER_MANIFEST]
)


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


class Manifests(RegistryAPI):
    """GET, HEAD and PUT of manifests and indexes, by tag or digest, digests checked."""

    def _manifest_response(
        self, method: str, ref: Reference, *, push: bool, what: str
    ) -> requests.Response | None:
        """GET or HEAD ``ref``'s manifest: the 200 response (streamed for GET), None on 404."""
        response = self.request(
            method,
            ref,
            self.url(ref, f"manifests/{ref.identifier}"),
            push=push,
            headers={"Accept": ACCEPT},
            stream=method == "GET",
            what=what,
        )
        if response.status_code == 200:
            return response
        with response:
            if response.status_code == 404:
                return None
            raise self.error(what, response)

    def find_manifest(self, ref: Reference, *, push: bool = False) -> tuple[bytes, Descriptor] | None:
        """The manifest ``ref`` names, or None when the registry has none by that tag or digest."""
        what = f"get manifest {ref}"
        response = self._manifest_response("GET", ref, push=push, what=what)
        if response is None:
            return None
        with response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"{what}: the manifest is {length} bytes, over the 4 MiB limit")
            data = b""
            for chunk in response.iter_content(65536):
                data += chunk
                if len(data) > MAX_MANIFEST_BYTES:
                    raise RegistryError(f"{what}: the manifest is over the 4 MiB limit")
            media_type = _content_type(response)
        digest = digests.of_bytes(data)
        if ref.digest and ref.digest != digest:
            if digests.algorithm(ref.digest) != "sha256":
                import hashlib

                alg = digests.algorithm(ref.digest)
                digest = f"{alg}:{hashlib.new(alg, data).hexdigest()}"
            if ref.digest != digest:
                raise RegistryError(
                    f"{what}: the registry returned content whose digest is {digest}, not the one asked for",
                    hint="the registry or a proxy in between is corrupting content",
                )
        try:
            manifest = parse(data, media_type if media_type in mediatype.ALL_MANIFEST_TYPES else None)
        except ImageError as exc:
            raise RegistryError(f"{what}: {exc.message}") from None
        if media_type not in mediatype.ALL_MANIFEST_TYPES:
            media_type = manifest.media_type
        return data, Descriptor(
            media_type=media_type, digest=digest, size=len(data), artifact_type=manifest.artifact_type
        )

    def get_manifest(self, ref: Reference) -> tuple[bytes, Descriptor]:
        found = self.find_manifest(ref)
        if found is None:
            raise RegistryError(
                f"manifest {ref} not found",
                hint="check the repository name and tag (or digest), and that it was pushed",
            )
        return found

    def head_manifest(self, ref: Reference, *, push: bool = False) -> Descriptor | None:
        """The descriptor of the manifest ``ref`` names, or None. (``push``: ask with push scope.)"""
        what = f"head manifest {ref}"
        response = self._manifest_response("HEAD", ref, push=push, what=what)
        if response is None:
            return None
        with response:
            digest = response.headers.get("Docker-Content-Digest", "")
            length = response.headers.get("Content-Length", "")
            media_type = _content_type(response)
        if not digest or not length.isdigit() or media_type not in mediatype.ALL_MANIFEST_TYPES:
            found = self.find_manifest(ref, push=push)
            return None if found is None else found[1]
        try:
            return Descriptor(media_type=media_type, digest=digest, size=int(length))
        except ImageError:
            found = self.find_manifest(ref, push=push)
            return None if found is None else found[1]

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        return self.put_manifest_response(ref, data, media_type)[0]

    def put_manifest_response(
        self, ref: Reference, data: bytes, media_type: str
    ) -> tuple[str, requests.Response]:
        """Put the manifest; its digest and the registry's (closed) answer, whose headers may say more
        (``OCI-Subject`` when the registry indexes referrers itself)."""
        what = f"put manifest {ref}"
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(
                f"{what}: the manifest is {len(data)} bytes; registries refuse manifests over 4 MiB",
                hint="split the image into fewer layers or platforms",
            )
        if media_type not in mediatype.ALL_MANIFEST_TYPES:
            raise RegistryError(f"{what}: {media_type!r} is not a manifest media type")
        digest = digests.of_bytes(data)
        if ref.digest and ref.digest != digest:
            raise RegistryError(f"{what}: the manifest's digest is {digest}, not {ref.digest}")
        response = self.request(
            "PUT",
            ref,
            self.url(ref, f"manifests/{ref.identifier}"),
            push=True,
            headers={"Content-Type": media_type},
            body=data,
            what=what,
        )
        with response:
            if response.status_code not in (200, 201, 202):
                raise self.error(what, response)
            answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry says it stored {answered}, but {digest} was sent")
        return digest, response
