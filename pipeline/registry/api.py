"""The core of the registry client: one transport, URLs under ``/v2/<name>/``, authorized requests.

The protocol parts (``manifests``, ``blobs``, ``upload``, ``push``, ``pull``, ``tags``) are classes over
``RegistryAPI``; ``client.Client`` puts them together. ``url``, ``request`` and ``error`` are public so
that code speaking other endpoints (``referrers``) needs nothing private.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

from pipeline.errors import RegistryError
from pipeline.progress import Progress, Silent
from pipeline.registry.auth import repository_scope
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.transport import ApiCall, Transport, oci_errors

UPLOAD_WORKERS = 4
CHUNK_SIZE = 16 << 20


class RegistryAPI:
    """What every part of the client stands on: the transport, the repository URLs, authorized
    requests, error answers, and the blobs known to be in each repository (thread safe)."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def url(self, ref: Reference, path: str) -> str:
        """The API URL of ``path`` under ``ref``'s repository (``manifests/<tag>``, ``blobs/<digest>``...)."""
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
        """Send ``method`` to ``url`` with pull (``push``: pull and push) scope on ``ref``'s repository,
        plus ``extra_scopes``; the other keywords go to ``Transport.request`` (headers, body, stream,
        retry, redirects, on_bytes, what). The answer is the caller's to close."""
        actions = ("pull", "push") if push else ("pull",)
        scopes = [repository_scope(ref.repository, *actions), *extra_scopes]
        call = ApiCall(
            method,
            url,
            host=ref.host,
            registry=ref.registry,
            scopes=scopes,
            **kwargs,  # type: ignore[arg-type]
        )
        return self.transport.request(call)

    def error(self, what: str, response: requests.Response) -> RegistryError:
        """The error to raise for an unexpected answer: ``what`` failed, its HTTP status and OCI errors."""
        return RegistryError(f"{what}: HTTP {response.status_code} {oci_errors(response)}".rstrip())

    def remember_blob(self, ref: Reference, digest: str) -> None:
        """Note that ``ref``'s repository holds ``digest`` (a later push to the registry may mount it)."""
        with self._lock:
            self._known.setdefault(ref.registry, {}).setdefault(digest, set()).add(ref.repository)

    def mount_sources(self, ref: Reference, digest: str, extra: Sequence[str]) -> list[str]:
        """Other repositories of ``ref``'s registry to mount ``digest`` from: ``extra``, then known ones."""
        with self._lock:
            known = set(self._known.get(ref.registry, {}).get(digest, set()))
        sources = [repo for repo in extra if repo != ref.repository]
        sources += sorted(repo for repo in known if repo != ref.repository and repo not in sources)
        return sources
