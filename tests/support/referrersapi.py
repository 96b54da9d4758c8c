"""The OCI referrers API in front of a registry that lacks it (distribution 2.8), for tests.

A proxy on 127.0.0.1 that forwards every request to the real registry, and adds what the OCI
distribution spec (v1.1) asks of a registry with the referrers API:

- a manifest PUT whose body has a ``subject`` is answered with ``OCI-Subject: <subject digest>`` and
  the manifest is indexed as a referrer of that subject (artifactType, else the config mediaType;
  its annotations);
- ``GET /v2/<name>/referrers/<digest>`` answers an OCI image index of those descriptors,
  ``page_size`` at a time, with ``Link: <...>; rel="next"`` while more remain (as tags/list pages);
  ``?artifactType=`` filters and the answer says so in ``OCI-Filters-Applied``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from tests.support.httpserver import LoopbackServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class ReferrersApi(LoopbackServer):
    name = "referrers-api"

    def __init__(self, upstream: str, page_size: int = 2) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.page_size = page_size
        self.referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.pages_served = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _any(self) -> None:
                parts = urlsplit(self.path)
                found = _REFERRERS.match(parts.path)
                if found and self.command == "GET":
                    self._answer(*api.page(found["name"], found["digest"], parse_qs(parts.query)))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Host"] = api.host  # the registry's Locations point back here
                answer = api._session.request(
                    self.command, api.upstream + self.path, headers=headers, data=body or None,
                    allow_redirects=False, timeout=60,
                )  # fmt: skip
                out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
                manifest = _MANIFEST.match(parts.path)
                if manifest and self.command == "PUT" and answer.status_code == 201:
                    subject = api.index(manifest["name"], body, self.headers.get("Content-Type", ""))
                    if subject:
                        out["OCI-Subject"] = subject
                self._answer(answer.status_code, out, answer.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any  # noqa: N815

        return Handler

    def index(self, name: str, body: bytes, media_type: str) -> str | None:
        try:
            doc = json.loads(body)
            subject = doc["subject"]["digest"]
        except (ValueError, KeyError, TypeError):
            return None
        desc: dict[str, Any] = {
            "mediaType": doc.get("mediaType") or media_type,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if artifact_type:
            desc["artifactType"] = artifact_type
        if doc.get("annotations"):
            desc["annotations"] = doc["annotations"]
        with self._lock:
            self.referrers.setdefault((name, subject), {})[desc["digest"]] = desc
        return str(subject)

    def page(self, name: str, digest: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            entries = list(self.referrers.get((name, digest), {}).values())
            self.pages_served += 1
        headers = {"Content-Type": OCI_INDEX}
        wanted = query.get("artifactType", [None])[0]
        if wanted:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        start = int(query.get("page", ["0"])[0])
        chunk = entries[start : start + self.page_size]
        if start + self.page_size < len(entries):
            rest = {"page": str(start + self.page_size), **({"artifactType": wanted} if wanted else {})}
            headers["Link"] = f'</v2/{name}/referrers/{digest}?{urlencode(rest)}>; rel="next"'
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": chunk}).encode()
        return 200, headers, body
