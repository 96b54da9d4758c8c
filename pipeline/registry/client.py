"""The registry client: manifests and blobs over the OCI distribution API, push and pull.

Push follows what go-containerregistry's ``remote.Write`` and regclient do: HEAD each blob before
uploading it, mount it from another repository of the same registry when it is known there,
upload monolithically (POST, then PUT with the body) and fall back to chunks (PATCH) when the
registry refuses, check Docker-Content-Digest, then push platform manifests by digest, the index
by digest, and tags last. Everything is content addressed, so a push killed at any point and run
again ends with the same digests and nothing duplicated.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from pipeline.errors import ImageError, RegistryError
from pipeline.oci import digest as digests
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import MAX_MANIFEST_BYTES, Index, Manifest, parse
from pipeline.progress import Progress, Silent
from pipeline.registry.auth import repository_scope
from pipeline.registry.body import Body, FileBody, OnBytes, sliced
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.retry import RETRY_STATUSES, Deadline, backoff_delay, parse_retry_after
from pipeline.registry.transport import Transport, error_codes, oci_errors

ACCEPT = ", ".join(
    [mediatype.OCI_INDEX, mediatype.OCI_MANIFEST, mediatype.DOCKER_MANIFEST_LIST, mediatype.DOCKER_MANIFEST]
)
UPLOAD_WORKERS = 4
CHUNK_SIZE = 16 << 20
BLOB_ATTEMPTS = 8
# Answers to a monolithic PUT that mean "send it in chunks instead".
_REFUSES_MONOLITHIC = frozenset({400, 405, 411, 413, 416, 501})


@dataclass(frozen=True)
class PushResult:
    digest: str
    bytes_uploaded: int
    blobs_uploaded: int
    blobs_skipped: int


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


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


class Client:
    """A registry client (thread safe; one per run, shared by the stages)."""

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        insecure: Collection[str] = (),
        ca_file: Path | None = None,
        progress: Progress | None = None,
        timeout: float = 60.0,
        deadline: float = 600.0,
        workers: int = UPLOAD_WORKERS,
        monolithic_limit: int | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.credentials = credentials if credentials is not None else Credentials.from_environment()
        self.progress = progress if progress is not None else Silent()
        self.transport = Transport(
            self.credentials,
            insecure=insecure,
            ca_file=ca_file,
            timeout=timeout,
            deadline=deadline,
            pool_size=max(16, workers * 2),
        )
        self.deadline = deadline
        self.workers = max(1, workers)
        self.monolithic_limit = monolithic_limit  # blobs larger than this go up in chunks
        self.chunk_size = max(1, chunk_size)
        # digest -> repositories of a registry known to hold it (for cross-repository mounts)
        self._known: dict[str, dict[str, set[str]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def url(self, ref: Reference, path: str) -> str:
        return f"{self.transport.base_url(ref.host, ref.is_loopback)}/v2/{ref.repository}/{path}"

    def request(
        self,
        method: str,
        ref: Reference,
        url: str,
        *,
        push: bool = False,
        extra_scopes: Sequence[str] = (),
        **kwargs: object,
    ) -> requests.Response:
        actions = ("pull", "push") if push else ("pull",)
        scopes = [repository_scope(ref.repository, *actions), *extra_scopes]
        return self.transport.request(
            method,
            url,
            host=ref.host,
            registry=ref.registry,
            scopes=scopes,
            **kwargs,  # type: ignore[arg-type]
        )

    def error(self, what: str, response: requests.Response) -> RegistryError:
        return RegistryError(f"{what}: HTTP {response.status_code} {oci_errors(response)}".rstrip())

    def remember_blob(self, ref: Reference, digest: str) -> None:
        """Note that ``ref``'s repository holds ``digest`` (a later push to the registry may mount it)."""
        with self._lock:
            self._known.setdefault(ref.registry, {}).setdefault(digest, set()).add(ref.repository)

    def _mount_sources(self, ref: Reference, digest: str, extra: Sequence[str]) -> list[str]:
        with self._lock:
            known = set(self._known.get(ref.registry, {}).get(digest, set()))
        sources = [repo for repo in extra if repo != ref.repository]
        sources += sorted(repo for repo in known if repo != ref.repository and repo not in sources)
        return sources

    # -- manifests -------------------------------------------------------------------------
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

    def list_tags(self, ref: Reference) -> list[str]:
        what = f"list tags of {ref.repo_str}"
        url: str | None = self.url(ref, "tags/list?n=1000")
        tags: list[str] = []
        pages = 0
        while url and pages < 1000:
            pages += 1
            response = self.request("GET", ref, url, what=what)
            with response:
                if response.status_code == 404:
                    return tags
                if response.status_code != 200:
                    raise self.error(what, response)
                try:
                    body = response.json()
                except ValueError:
                    raise RegistryError(f"{what}: the registry did not answer JSON") from None
                tags.extend(str(tag) for tag in (body.get("tags") or []))
                url = next_link(response)
        return tags

    # -- blobs -----------------------------------------------------------------------------
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

    def get_blob(self, ref: Reference, digest: str) -> bytes:
        digests.validate(digest)
        for response in self._blob_stream(ref, digest):
            verifier = digests.Verifier(digest)
            parts: list[bytes] = []
            try:
                with response:
                    for chunk in response.iter_content(1 << 20):
                        verifier.update(chunk)
                        parts.append(chunk)
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

    def upload_blob(self, ref: Reference, data: bytes) -> str:
        digest = digests.of_bytes(data)
        self._ensure_blob(ref, digest, len(data), data)
        return digest

    def _ensure_blob(
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
        for source in self._mount_sources(ref, digest, mount_from):
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

    # -- push ------------------------------------------------------------------------------
    def push_layout(
        self,
        layout: Layout,
        desc: Descriptor,
        ref: Reference,
        tags: Sequence[str] = (),
        *,
        mount_from: Sequence[str] = (),
    ) -> PushResult:
        """Push the image (or index) ``desc`` of ``layout`` to ``ref``'s repository, then tag it."""
        target = Reference(ref.registry, ref.repository)
        manifests: list[tuple[Descriptor, bytes, list[str]]] = []
        blobs: dict[str, Descriptor] = {}
        self._collect(layout, desc, manifests, blobs, set())
        for blob in blobs.values():
            path = layout.blob_path(blob.digest)
            if not path.is_file():
                raise ImageError(f"blob {blob.digest} is missing from the layout {layout.root}")
            if path.stat().st_size != blob.size:
                raise ImageError(
                    f"blob {blob.digest} in {layout.root} is {path.stat().st_size} bytes, "
                    f"its descriptor says {blob.size} (corrupt layout)"
                )
        total = sum(blob.size for blob in blobs.values())
        label = f"push {target.repo_str}"
        self.progress.step(f"pushing {len(blobs)} blobs ({total} bytes) to {target.repo_str}")
        sent = [0]
        sent_lock = threading.Lock()

        def on_bytes(count: int) -> None:
            with sent_lock:
                sent[0] += count
                done = sent[0]
            self.progress.update(label, done, total, unit="bytes")

        def one(blob: Descriptor) -> bool:
            return self._ensure_blob(
                target,
                blob.digest,
                blob.size,
                FileBody(layout.blob_path(blob.digest)),
                mount_from=mount_from,
                on_bytes=on_bytes,
            )

        uploaded = skipped = uploaded_bytes = 0
        # Digests written by this push: a manifest over any of them cannot be in the repository yet,
        # so it needs no HEAD first.
        fresh: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="upload") as pool:
            results = list(pool.map(one, blobs.values()))
            for blob, was_uploaded in zip(blobs.values(), results, strict=True):
                if was_uploaded:
                    uploaded += 1
                    uploaded_bytes += blob.size
                    fresh.add(blob.digest)
                else:
                    skipped += 1

            def put(item: tuple[Descriptor, bytes, list[str]]) -> bool:
                mdesc, data, children = item
                by_digest = target.with_digest(mdesc.digest)
                if not fresh.intersection(children) and self.head_manifest(by_digest, push=True) is not None:
                    return False
                self.put_manifest(by_digest, data, _media_type_of(data, mdesc.media_type))
                return True

            # Level by level: platform manifests (in parallel), then the index over them, by digest.
            height: dict[str, int] = {}
            for mdesc, _data, children in manifests:  # children come before their parents
                height[mdesc.digest] = 1 + max((height.get(c, -1) for c in children), default=-1)
            for level in sorted(set(height.values())):
                batch = [m for m in manifests if height[m[0].digest] == level]
                for item, written in zip(batch, pool.map(put, batch), strict=True):
                    if written:
                        fresh.add(item[0].digest)
        top_data = manifests[-1][1]
        wanted = list(dict.fromkeys([*tags, *([ref.tag] if ref.tag else [])]))
        for tag in wanted:
            tagged = target.with_tag(tag)
            current = self.head_manifest(tagged, push=True)
            if current is None or current.digest != desc.digest:
                self.put_manifest(tagged, top_data, _media_type_of(top_data, desc.media_type))
        self.progress.info(
            f"pushed {target.repo_str}@{desc.digest}: {uploaded} blobs uploaded ({uploaded_bytes} bytes), "
            f"{skipped} already there" + (f", tags {', '.join(wanted)}" if wanted else "")
        )
        return PushResult(desc.digest, uploaded_bytes, uploaded, skipped)

    def _collect(
        self,
        layout: Layout,
        desc: Descriptor,
        manifests: list[tuple[Descriptor, bytes, list[str]]],
        blobs: dict[str, Descriptor],
        seen: set[str],
    ) -> None:
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if desc.media_type not in mediatype.ALL_MANIFEST_TYPES:
            raise ImageError(
                f"{desc.digest} in {layout.root} is a {desc.media_type!r}, not a manifest or index"
            )
        data = layout.read_blob(desc.digest)
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"manifest {desc.digest} is {len(data)} bytes; registries refuse over 4 MiB")
        if len(data) != desc.size:
            raise ImageError(f"manifest {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}")
        item = parse(data, desc.media_type)
        children: list[str] = []
        if isinstance(item, Index):
            for child in item.manifests:
                self._collect(layout, child, manifests, blobs, seen)
                children.append(child.digest)
        else:
            for blob in (item.config, *item.layers):
                blobs.setdefault(blob.digest, blob)
                children.append(blob.digest)
        manifests.append((desc, data, children))

    # -- pull ------------------------------------------------------------------------------
    def pull_platform(self, ref: Reference, platform: Platform) -> tuple[Manifest, Descriptor]:
        """The image manifest of ``ref`` for ``platform`` (picked from an index when ref names one)."""
        data, desc = self.get_manifest(ref)
        item = parse(data, desc.media_type)
        if isinstance(item, Index):
            candidates = [
                d for d in item.manifests if d.platform is not None and platform.matches(d.platform)
            ]
            if not candidates:
                offered = sorted({str(d.platform) for d in item.manifests if d.platform is not None})
                raise RegistryError(
                    f"{ref} has no image for {platform}",
                    hint=f"it offers: {', '.join(offered) or 'no platforms'}",
                )
            chosen = candidates[0]
            data, child = self.get_manifest(ref.with_digest(chosen.digest))
            item = parse(data, child.media_type)
            if not isinstance(item, Manifest):
                raise RegistryError(f"{ref} for {platform} is a nested index, not an image manifest")
            return item, Descriptor(
                child.media_type,
                child.digest,
                child.size,
                chosen.annotations,
                chosen.platform,
                item.artifact_type,
            )
        config = self.get_blob(ref, item.config.digest)
        try:
            import json

            found = Platform.from_dict(json.loads(config))
        except (ValueError, AttributeError):
            raise RegistryError(f"{ref}: the image config is not JSON") from None
        if not platform.matches(found):
            raise RegistryError(f"{ref} is an image for {found}, not {platform}")
        return item, Descriptor(desc.media_type, desc.digest, desc.size, platform=found)


def _media_type_of(data: bytes, fallback: str) -> str:
    """The manifest's own mediaType (what the PUT's Content-Type must be), else the descriptor's."""
    return parse(data, fallback).media_type


def next_link(response: requests.Response) -> str | None:
    """The ``Link: <...>; rel="next"`` page of a paged answer (tags, referrers), or None.

    The next page must be on the registry's own origin: the request for it carries the registry's
    Authorization header, which never goes to another host.
    """
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    url = urljoin(response.url, link["url"])
    here, there = urlsplit(response.url), urlsplit(url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        raise RegistryError(
            f"the registry's next page is on another origin ({there.scheme}://{there.netloc})",
            hint="a registry pages its lists on its own host; this answer is not trusted",
        )
    return url
