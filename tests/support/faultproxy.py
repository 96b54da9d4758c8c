"""A scriptable HTTP proxy in front of a registry, for failure tests.

It forwards every request to the upstream registry unchanged (the Host header too, so the registry's
absolute Location headers point back at the proxy), and counts requests and request-body bytes per
method and path. Tests script faults on it, each matched by method and a path regex, skipping the first
``skip`` matches and then firing ``times`` times:

- ``proxy.fail(500, times=2)``: answer with a status (500, 503, 408, ...) without forwarding;
- ``proxy.throttle(retry_after="2")``: answer 429 with ``Retry-After`` (seconds, or an HTTP date:
  ``retry_after_date(seconds)``);
- ``proxy.drop_upload(nth=1)``: on the nth request with a body (a blob upload), read part of the body,
  forward that part, then reset both connections (the client sees the connection die mid-body);
- ``proxy.stall(seconds)``: wait before forwarding (for request timeouts);
- ``proxy.rewrite_header(name, value)``: forward, then answer with the upstream's response header
  ``name`` replaced by ``value`` (a registry, or a proxy, that lies about Docker-Content-Digest).

Each fault records how often it fired (``fault.fired``).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import re
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.support.httpserver import LoopbackServer

BODY_METHODS = ("POST", "PUT", "PATCH")
UPLOAD_PATH = r"/v2/.+/blobs/uploads/"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
_PIECE = 1 << 16


def retry_after_date(seconds: float) -> str:
    """An HTTP-date ``seconds`` from now, for ``Retry-After``."""
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@dataclass
class Fault:
    kind: str  # "status", "drop", "stall", "rewrite"
    method: str | None = None
    path: str | None = None  # a regex searched in the request path
    skip: int = 0
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int | None = None  # drop: bytes of the body to pass before the reset (default: half)
    seconds: float = 0.0  # stall
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, has_body: bool) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        return not (self.kind == "drop" and not has_body)


@dataclass
class Exchange:
    """One request as the proxy saw it."""

    method: str
    path: str
    status: int | None  # None when the proxy dropped the connection
    body_bytes: int  # request body bytes received from the client and forwarded
    authorized: bool  # carried an Authorization header
    fault: str | None


class FaultProxy(LoopbackServer):
    name = "fault-proxy"

    def __init__(self, upstream: str) -> None:
        super().__init__()
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.faults: list[Fault] = []
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    # -- scripting ---------------------------------------------------------------------------------
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail(
        self,
        status: int = 500,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        skip: int = 0,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        return self.add(Fault("status", method, path, skip, times, status, dict(headers or {})))

    def throttle(
        self,
        retry_after: str | float | None = "1",
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        skip: int = 0,
    ) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return self.add(Fault("status", method, path, skip, times, 429, headers))

    def drop_upload(
        self,
        nth: int = 1,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = UPLOAD_PATH,
        after_bytes: int | None = None,
    ) -> Fault:
        return self.add(Fault("drop", method, path, nth - 1, times, after_bytes=after_bytes))

    def stall(
        self,
        seconds: float,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        skip: int = 0,
    ) -> Fault:
        return self.add(Fault("stall", method, path, skip, times, seconds=seconds))

    def rewrite_header(
        self,
        name: str,
        value: str,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        skip: int = 0,
    ) -> Fault:
        return self.add(Fault("rewrite", method, path, skip, times, 0, {name: value}))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def _take_fault(self, method: str, path: str, has_body: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired >= fault.times or not fault.matches(method, path, has_body):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.fired += 1
                return fault
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    # -- counts ------------------------------------------------------------------------------------
    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and the ``path`` regex."""
        return len(self._select(method, path))

    def bytes_received(self, method: str | None = None, path: str | None = None) -> int:
        """Request-body bytes the proxy received (and forwarded) for matching requests."""
        return sum(e.body_bytes for e in self._select(method, path))

    def bytes_uploaded(self) -> int:
        """Body bytes of blob uploads (POST/PATCH/PUT under /blobs/uploads/)."""
        return sum(e.body_bytes for e in self._select(None, UPLOAD_PATH) if e.method in BODY_METHODS)

    def by_method_path(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(method, path) -> (requests, body bytes)."""
        table: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        with self._lock:
            for e in self.exchanges:
                table[(e.method, e.path)][0] += 1
                table[(e.method, e.path)][1] += e.body_bytes
        return {key: (v[0], v[1]) for key, v in table.items()}

    def _select(self, method: str | None, path: str | None) -> list[Exchange]:
        with self._lock:
            return [
                e
                for e in self.exchanges
                if (method is None or e.method == method) and (path is None or re.search(path, e.path))
            ]


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a dying network or process looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            return

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                if self.upstream is not None:
                    self.upstream.close()

        # Every method goes through one path.
        def do_GET(self) -> None:  # noqa: N802
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

        def _body_iter(self, limit: int | None = None) -> Any:
            """Yield the request body in pieces (Content-Length or chunked), at most ``limit`` bytes."""
            sent = 0
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                while True:
                    line = self.rfile.readline()
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    remaining = size
                    while remaining:
                        want = min(remaining, _PIECE)
                        if limit is not None:
                            want = min(want, limit - sent)
                            if want <= 0:
                                return
                        piece = self.rfile.read(want)
                        if not piece:
                            return
                        remaining -= len(piece)
                        sent += len(piece)
                        yield piece
                    self.rfile.readline()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                if limit is not None:
                    length = min(length, limit)
                while sent < length:
                    piece = self.rfile.read(min(_PIECE, length - sent))
                    if not piece:
                        return
                    sent += len(piece)
                    yield piece

        def _has_body(self) -> bool:
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            return "chunked" in te or int(self.headers.get("Content-Length") or 0) > 0

        def _connect(self) -> http.client.HTTPConnection:
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=300
                )
            return self.upstream

        def _send_status(self, fault: Fault, path: str, authorized: bool) -> None:
            # Read (and discard) the body first, so the connection stays usable.
            received = sum(len(p) for p in self._body_iter())
            data = (f'{{"errors":[{{"code":"UNAVAILABLE","message":"injected {fault.status}"}}]}}').encode()
            # Recorded before the answer goes out, so a client that has its answer sees it counted.
            proxy._record(Exchange(self.command, path, fault.status, received, authorized, "status"))
            self.send_response(fault.status)
            for key, value in fault.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _drop(self, fault: Fault, path: str, authorized: bool) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            limit = fault.after_bytes if fault.after_bytes is not None else max(1, length // 2)
            received = 0
            upstream = self._connect()
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        upstream.putheader(key, value)
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    upstream.putheader("Transfer-Encoding", "chunked")
                    chunked = True
                else:
                    chunked = False
                upstream.endheaders()
                for piece in self._body_iter(limit):
                    received += len(piece)
                    upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            except OSError:
                pass
            proxy._record(Exchange(self.command, path, None, received, authorized, "drop"))
            if upstream.sock is not None:
                _reset(upstream.sock)
            upstream.sock = None
            upstream.close()
            self.upstream = None
            self.close_connection = True
            _reset(self.connection)

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            authorized = "Authorization" in self.headers
            fault = proxy._take_fault(self.command, path, self._has_body())
            if fault is not None and fault.kind == "status":
                self._send_status(fault, path, authorized)
                return
            if fault is not None and fault.kind == "drop":
                self._drop(fault, path, authorized)
                return
            if fault is not None and fault.kind == "stall":
                time.sleep(fault.seconds)
            rewrite = fault.headers if fault is not None and fault.kind == "rewrite" else {}
            self._forward(path, authorized, fault.kind if fault else None, rewrite)

        def _forward(
            self, path: str, authorized: bool, fault: str | None, rewrite: dict[str, str] | None = None
        ) -> None:
            replaced = {key.lower(): value for key, value in (rewrite or {}).items()}
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            received = 0
            for attempt in range(2):
                upstream = self._connect()
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for key, value in self.headers.items():
                        if key.lower() not in _HOP_BY_HOP:
                            upstream.putheader(key, value)
                    if chunked:
                        body = b"".join(self._body_iter()) if attempt == 0 else b""
                        received = len(body)
                        upstream.putheader("Content-Length", str(len(body)))
                        upstream.endheaders()
                        upstream.send(body)
                    else:
                        upstream.endheaders()
                        for piece in self._body_iter():
                            received += len(piece)
                            upstream.send(piece)
                    response = upstream.getresponse()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive upstream connection the registry closed: reconnect once, but only
                    # when no body has been consumed yet.
                    upstream.close()
                    self.upstream = None
                    if attempt == 1 or received:
                        self.close_connection = True
                        _reset(self.connection)
                        proxy._record(Exchange(self.command, path, None, received, authorized, fault))
                        return
            proxy._record(Exchange(self.command, path, response.status, received, authorized, fault))
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, replaced.get(key.lower(), value))
            if self.command == "HEAD" or response.status in (204, 304):
                self.end_headers()
                response.read()
            elif length is not None:
                self.end_headers()
                while True:
                    piece = response.read(_PIECE)
                    if not piece:
                        break
                    self.wfile.write(piece)
            else:
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            if response.will_close:
                upstream.close()
                self.upstream = None

    return Handler


def settle(proxy: FaultProxy, done: Callable[[], bool]) -> None:
    """The proxy records an exchange just after answering it: wait (briefly) until it has."""
    for _ in range(200):
        if done():
            return
        time.sleep(0.01)
