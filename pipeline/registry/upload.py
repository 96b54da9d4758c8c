"""Blob uploads, the way go-containerregistry's ``remote.Write`` and regclient do them: HEAD the blob
first, mount it from another repository of the same registry when it is known there, upload
monolithically (POST, then PUT with the body) and fall back to chunks (PATCH) when the registry
refuses, and check the Docker-Content-Digest the registry answers with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from pipeline.errors import RegistryError
from pipeline.oci import digests
from pipeline.registry.auth import repository_scope
from pipeline.registry.blobs import BLOB_ATTEMPTS, Blobs
from pipeline.registry.body import Body, OnBytes, sliced
from pipeline.registry.reference import Reference
from pipeline.registry.retry import RETRY_STATUSES, Deadline, backoff_delay, parse_retry_after
from pipeline.registry.transport import error_codes

# Answers to a monolithic PUT that mean "send it in chunks instead".
_REFUSES_MONOLITHIC = frozenset({400, 405, 411, 413, 416, 501})


class _Transient(Exception):
    """A failure worth restarting a blob upload for (after ``wait`` seconds, if given)."""

    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.wait = wait


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class Uploads(Blobs):
    """Writing blobs: HEAD first, then mount, then a monolithic upload, else chunks; restarted
    from the start when the network or the upload session fails."""

    def upload_blob(self, ref: Reference, data: bytes) -> str:
        digest = digests.of_bytes(data)
        self.ensure_blob(ref, digest, len(data), data)
        return digest

    def ensure_blob(
        self,
        ref: Reference,
        digest: str,
        size: int,
        body: Body,
        *,
        mount_from: Sequence[str] = (),
        on_bytes: OnBytes | None = None,
    ) -> bool:
        """Make sure ``ref``'s repository has the blob; True if its bytes were uploaded."""
        if self.blob_exists(ref, digest, push=True):
            return False
        for source in self.mount_sources(ref, digest, mount_from):
            if self._mount(ref, digest, source):
                return False
        what = f"upload blob {digest} to {ref.repo_str}"
        deadline = Deadline(self.deadline)
        chunked = self.monolithic_limit is not None and size > self.monolithic_limit
        last = ""
        for attempt in range(BLOB_ATTEMPTS):
            try:
                if chunked:
                    self._upload_chunked(ref, digest, size, body, on_bytes)
                else:
                    chunked = not self._upload_monolithic(ref, digest, body, on_bytes)
                    if chunked:
                        self._upload_chunked(ref, digest, size, body, on_bytes)
                self.remember_blob(ref, digest)
                return True
            except _Transient as exc:
                last = exc.why
                # The registry may have stored it all the same (the answer was lost).
                if self.blob_exists(ref, digest, push=True):
                    return True
                deadline.sleep(
                    exc.wait if exc.wait is not None else backoff_delay(attempt), f"{what} ({last})"
                )
        raise RegistryError(f"{what}: failed {BLOB_ATTEMPTS} times, last: {last}")

    def _mount(self, ref: Reference, digest: str, source: str) -> bool:
        url = _with_query(self.url(ref, "blobs/uploads/"), mount=digest, **{"from": source})
        response = self.request(
            "POST",
            ref,
            url,
            push=True,
            extra_scopes=[repository_scope(source, "pull")],
            body=b"",
            what=f"mount blob {digest} from {source}",
        )
        with response:
            if response.status_code == 201:
                self.remember_blob(ref, digest)
                return True
            if response.status_code == 202 and response.headers.get("Location"):
                # The registry opened an ordinary upload instead; cancel it, the caller uploads.
                with contextlib.suppress(RegistryError):
                    self.request(
                        "DELETE",
                        ref,
                        urljoin(response.url, response.headers["Location"]),
                        push=True,
                        retry=False,
                        what="cancel upload",
                    ).close()
            return False

    def _start_upload(self, ref: Reference, digest: str) -> str:
        what = f"start upload of {digest} to {ref.repo_str}"
        response = self.request("POST", ref, self.url(ref, "blobs/uploads/"), push=True, body=b"", what=what)
        with response:
            if response.status_code != 202 or not response.headers.get("Location"):
                if response.status_code in RETRY_STATUSES:
                    raise _Transient(f"HTTP {response.status_code}")
                raise self.error(what, response)
            return urljoin(response.url, response.headers["Location"])

    def _send_upload(
        self,
        ref: Reference,
        method: str,
        url: str,
        body: Body,
        what: str,
        on_bytes: OnBytes | None,
        headers: dict[str, str],
    ) -> requests.Response:
        try:
            response = self.request(
                method,
                ref,
                url,
                push=True,
                body=body,
                headers=headers,
                retry=False,
                on_bytes=on_bytes,
                what=what,
            )
        except RegistryError as exc:
            if type(exc) is RegistryError:  # the network failed (not auth): start again
                raise _Transient(exc.message) from None
            raise
        if response.status_code in RETRY_STATUSES:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            raise _Transient(f"HTTP {response.status_code}", wait)
        if response.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in error_codes(response):
            response.close()  # the registry dropped the upload session (expired, or cleaned up): start again
            raise _Transient("the upload session is gone (BLOB_UPLOAD_UNKNOWN)")
        return response

    def _check_stored(self, what: str, response: requests.Response, digest: str) -> None:
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"{what}: the registry stored {answered}, but {digest} was sent")

    def _upload_monolithic(self, ref: Reference, digest: str, body: Body, on_bytes: OnBytes | None) -> bool:
        """POST + PUT with the whole body. False when the registry refuses a monolithic upload."""
        what = f"upload blob {digest} to {ref.repo_str}"
        location = self._start_upload(ref, digest)
        response = self._send_upload(
            ref,
            "PUT",
            _with_query(location, digest=digest),
            body,
            what,
            on_bytes,
            {"Content-Type": "application/octet-stream"},
        )
        with response:
            if response.status_code == 201:
                self._check_stored(what, response, digest)
                return True
            if "DIGEST_INVALID" in error_codes(response) or "SIZE_INVALID" in error_codes(response):
                raise RegistryError(
                    f"{what}: the registry says the content does not match {digest}",
                    hint="the local blob is corrupt: rebuild the image layout",
                )
            if response.status_code in _REFUSES_MONOLITHIC:
                return False
            raise self.error(what, response)

    def _upload_chunked(
        self, ref: Reference, digest: str, size: int, body: Body, on_bytes: OnBytes | None
    ) -> None:
        what = f"chunked upload of {digest} to {ref.repo_str}"
        location = self._start_upload(ref, digest)
        offset = 0
        while offset < size:
            length = min(self.chunk_size, size - offset)
            response = self._send_upload(
                ref,
                "PATCH",
                location,
                sliced(body, offset, length),
                what,
                on_bytes,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + length - 1}",
                },
            )
            with response:
                if response.status_code not in (202, 204) or not response.headers.get("Location"):
                    raise self.error(what, response)
                location = urljoin(response.url, response.headers["Location"])
                stored = response.headers.get("Range", "")
            if stored:
                try:
                    end = int(stored.split("-", 1)[1])
                except (IndexError, ValueError):
                    end = offset + length - 1
                if end != offset + length - 1:
                    raise _Transient(f"the registry stored up to byte {end}, not {offset + length - 1}")
            offset += length
        response = self._send_upload(
            ref,
            "PUT",
            _with_query(location, digest=digest),
            b"",
            what,
            None,
            {"Content-Type": "application/octet-stream"},
        )
        with response:
            if response.status_code != 201:
                if "DIGEST_INVALID" in error_codes(response):
                    raise RegistryError(
                        f"{what}: the registry says the content does not match {digest}",
                        hint="the local blob is corrupt: rebuild the image layout",
                    )
                raise self.error(what, response)
            self._check_stored(what, response, digest)
