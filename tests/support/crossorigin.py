"""Two loopback origins in front of one real registry, for tests of where credentials go.

``Forwarder`` forwards every request to an upstream registry and records what it received. Used twice:

- as the registry's front door (``send_on_to=OTHER``): the ``Location`` and ``Link`` headers of the
  registry's answers are rewritten to name the other origin, as a registry does whose uploads and
  pages are served by blob storage on another host;
- as that other origin (``authorization=...``): it presents its own access to the registry (storage
  does not need the client's credentials), and records whether the client sent any.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.support.httpserver import LoopbackServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    authorization: str | None


class Forwarder(LoopbackServer):
    name = "forwarder"

    def __init__(
        self, upstream: str, *, authorization: str | None = None, send_on_to: str | None = None
    ) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.authorization = authorization
        self.send_on_to = send_on_to
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.received.append(
                        Received(self.command, urlsplit(self.path).path, self.headers.get("Authorization"))
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if server.authorization is not None:
                    headers["Authorization"] = server.authorization
                answer = server._session.request(
                    self.command, server.upstream + self.path, headers=headers, data=body or None,
                    allow_redirects=False, timeout=60,
                )  # fmt: skip
                out = {k: server.rewrite(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP}
                self.send_response(answer.status_code)
                for key, value in out.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any  # noqa: N815

        return Handler

    def rewrite(self, name: str, value: str) -> str:
        """A Location or Link of the registry's, made to name ``send_on_to`` (absolute or relative),
        else this server itself (as any proxy does)."""
        target = self.send_on_to
        if name.lower() not in ("location", "link"):
            return value
        if target is None:
            return value.replace(self.upstream, self.url)
        value = value.replace(self.upstream, target).replace(self.url, target)
        return re.sub(r"(^|<)/v2/", lambda m: m.group(1) + target + "/v2/", value)

    def requests_with_authorization(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.authorization is not None]
