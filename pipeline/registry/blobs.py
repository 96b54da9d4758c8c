"""Blobs: ``/v2/<name>/blobs/<digest>``, checked for, read into memory or downloaded to a file,
verified against their digest and asked for again when the connection drops mid-body.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import requests

from pipeline.errors import LimitError, RegistryError
from pipeline.oci import digests
from pipeline.registry.api import RegistryAPI
from pipeline.registry.reference import Reference
from pipeline.registry.retry import Deadline, backoff_delay

BLOB_ATTEMPTS = 8


class Blobs(RegistryAPI):
    """Reading blobs."""

    def blob_exists(self, ref: Reference, digest: str, *, push: bool = False) -> bool:
        what = f"head blob {digest} in {ref.repo_str}"
        # A redirect (to object storage) means the registry has it; storage may refuse a HEAD.
        response = self.request(
            "HEAD", ref, self.url(ref, f"blobs/{digest}"), push=push, redirects=False, what=what
        )
        with response:
            if response.status_code == 200 or response.status_code in (301, 302, 303, 307, 308):
                self.remember_blob(ref, digest)
                return True
            if response.status_code == 404:
                return False
            raise self.error(what, response)

    def _blob_stream(self, ref: Reference, digest: str) -> Iterator[requests.Response]:
        what = f"get blob {digest} from {ref.repo_str}"
        deadline = Deadline(self.deadline)
        attempt = 0
        while True:
            response = self.request("GET", ref, self.url(ref, f"blobs/{digest}"), stream=True, what=what)
            if response.status_code == 404:
                response.close()
                raise RegistryError(f"{what}: not found (HTTP 404)")
            if response.status_code != 200:
                with response:
                    raise self.error(what, response)
            yield response
            attempt += 1
            if attempt >= BLOB_ATTEMPTS:
                raise RegistryError(f"{what}: failed {attempt} times")
            deadline.sleep(backoff_delay(attempt), what)

    def get_blob(self, ref: Reference, digest: str, *, size: int | None = None) -> bytes:
        """The blob's bytes, verified. ``size`` (its descriptor's): never more than that is read."""
        digests.validate(digest)
        what = f"blob {digest} from {ref.repo_str}"
        for response in self._blob_stream(ref, digest):
            verifier = digests.Verifier(digest)
            parts: list[bytes] = []
            try:
                with response:
                    _check_length(what, response, size)
                    for chunk in response.iter_content(1 << 20):
                        verifier.update(chunk)
                        parts.append(chunk)
                        if size is not None and verifier.count > size:
                            raise LimitError(f"{what} is longer than its descriptor's {size} bytes")
            except requests.exceptions.RequestException:
                continue  # dropped mid-body: ask again
            if not verifier.ok():
                raise RegistryError(
                    f"blob {digest} from {ref.repo_str} has digest {verifier.actual}: the content is corrupt"
                )
            self.remember_blob(ref, digest)
            return b"".join(parts)
        raise AssertionError("unreachable")  # pragma: no cover

    def download_blob(self, ref: Reference, digest: str, dest: Path) -> None:
        digests.validate(digest)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for response in self._blob_stream(ref, digest):
            verifier = digests.Verifier(digest)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as handle, response:
                    for chunk in response.iter_content(1 << 20):
                        verifier.update(chunk)
                        handle.write(chunk)
                    self.progress.update(f"pull {digest[7:19]}", verifier.count, None, unit="bytes")
            except requests.exceptions.RequestException:
                Path(tmp).unlink(missing_ok=True)
                continue
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            if not verifier.ok():
                Path(tmp).unlink(missing_ok=True)
                raise RegistryError(
                    f"blob {digest} from {ref.repo_str} has digest {verifier.actual}: the content is corrupt"
                )
            os.replace(tmp, dest)
            self.remember_blob(ref, digest)
            return
        raise AssertionError("unreachable")  # pragma: no cover


def _check_length(what: str, response: requests.Response, size: int | None) -> None:
    """Refuse, before reading it, a blob whose Content-Length is over its descriptor's size."""
    length = response.headers.get("Content-Length", "")
    if size is not None and length.isdigit() and int(length) > size:
        raise LimitError(f"{what} is {length} bytes, longer than its descriptor's {size}: not read")
