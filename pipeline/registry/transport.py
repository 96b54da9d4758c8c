"""HTTP transport to registries: timeouts, retries with backoff, Retry-After, auth, safe redirects.

Every request has a timeout. Connection errors, timeouts, 408, 429 and 5xx (not 501/505) are retried
with backoff until an overall deadline (the policy is in ``retry``). Bodies are bytes or a file
re-opened on each attempt (``body``), never a consumed stream. Redirects are followed here, not by
requests, so the Authorization header never goes to another origin (blob GETs are often redirected to
object storage); neither does it go with a URL the registry names (an upload's Location, a next page),
and a plain-HTTP one is refused for a registry with TLS (``origin``). Answers are read within limits
(``answers``). Plain HTTP is used only for loopback registries, or for a registry host the caller
names as ``insecure`` (then HTTPS without verification is tried first). ``insecure`` covers those
hosts only: a token realm or a redirect target elsewhere is verified as usual. A private CA needs no
``insecure`` at all: ``ca_file`` (or ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` in the environment)
names the bundle TLS is verified against.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3

from pipeline.config import ca_bundle_from
from pipeline.errors import AuthError, RegistryError
from pipeline.registry import answers
from pipeline.registry.auth import Authenticator, parse_challenges
from pipeline.registry.body import Body, FileBody, OnBytes, Reader
from pipeline.registry.credentials import Credentials
from pipeline.registry.origin import Boundary
from pipeline.registry.reference import is_loopback_host
from pipeline.registry.retry import MAX_ATTEMPTS, RETRY_STATUSES, Deadline, backoff_delay, parse_retry_after
from pipeline.registry.tls import verification

MAX_REDIRECTS = 10
USER_AGENT = "kaniko-pipeline/0.1 (+python-requests)"


def oci_errors(response: requests.Response) -> str:
    """The OCI error codes and messages of an error answer, short, for messages."""
    try:
        body = json.loads(answers.error_body(response) or b"{}")
        errors = body.get("errors") if isinstance(body, dict) else None
    except (ValueError, RuntimeError):
        errors = None
    if isinstance(errors, list) and errors:
        parts = []
        for err in errors[:3]:
            if isinstance(err, dict):
                parts.append(f"{err.get('code', '?')}: {err.get('message', '')}".strip())
        if parts:
            return "; ".join(parts)
    return response.reason or ""


def error_codes(response: requests.Response) -> set[str]:
    try:
        body = json.loads(answers.error_body(response) or b"{}")
        return {str(e.get("code")) for e in body.get("errors", []) if isinstance(e, dict)}
    except (ValueError, AttributeError, RuntimeError):
        return set()


@dataclass(frozen=True)
class ApiCall:
    """One request to a registry's API: what to send (method, url, headers, params, body), to whom (the
    host, the registry its credentials are for, the token scopes it needs), and how: ``stream`` leaves
    the answer's body to the caller, ``retry`` retries network errors and 5xx, ``redirects`` follows
    them, ``on_bytes`` counts what is uploaded; ``what`` names it in errors (default: method and URL)."""

    method: str
    url: str
    host: str
    registry: str
    scopes: Sequence[str]
    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None
    body: Body | None = None
    stream: bool = False
    retry: bool = True
    redirects: bool = True
    on_bytes: OnBytes | None = None
    what: str = ""

    @property
    def label(self) -> str:
        return self.what or f"{self.method} {self.url}"


class Transport:
    """Sends requests to registries on behalf of the client (thread safe)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        insecure: Collection[str] = (),
        ca_file: Path | None = None,
        timeout: float = 60.0,
        deadline: float = 600.0,
        pool_size: int = 16,
    ) -> None:
        if isinstance(insecure, str | bool):
            raise TypeError("insecure names registry hosts (host[:port]), it is not a flag")
        self.insecure = frozenset(host.lower() for host in insecure)
        self.ca_file = ca_file if ca_file is not None else ca_bundle_from(os.environ)
        if self.ca_file is not None and not self.ca_file.is_file():
            raise RegistryError(
                f"the CA bundle {self.ca_file} does not exist",
                hint="point --ca-file (or REQUESTS_CA_BUNDLE / SSL_CERT_FILE) at a PEM file of CA certificates",
            )
        self.timeout = timeout
        self.deadline = deadline
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc picked up behind the user's back
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.auth = Authenticator(credentials, self._fetch_plain)
        self._schemes: dict[str, str] = {}
        self._lock = threading.Lock()
        if insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def close(self) -> None:
        self.session.close()

    # -- URLs -----------------------------------------------------------------------------
    def _verify(self, url: str) -> bool | str:
        return verification(url, self.insecure, self.ca_file)

    def boundary(self, host: str) -> Boundary:
        """Where the credentials of the registry ``host`` may go, and whether plain HTTP may be followed."""
        with self._lock:
            scheme = self._schemes.get(host)
        loopback = is_loopback_host(host)
        plain = loopback or host.lower() in self.insecure
        return Boundary.of(host, scheme or ("http" if loopback else "https"), plain)

    def base_url(self, host: str, loopback: bool) -> str:
        with self._lock:
            scheme = self._schemes.get(host)
        if scheme is None:
            if loopback:
                scheme = self._probe_loopback(host)
            elif host.lower() in self.insecure:
                scheme = self._probe(host)
            else:
                scheme = "https"
            with self._lock:
                self._schemes[host] = scheme
        self.auth.registry_scheme(host, scheme)
        return f"{scheme}://{host}"

    def _probe_loopback(self, host: str) -> str:
        """Plain HTTP for a loopback registry, unless it turns out to speak only TLS."""
        try:
            with self.session.get(
                f"http://{host}/v2/", timeout=(5, 10), allow_redirects=False, stream=True
            ) as response:
                tls_only = response.status_code == 400 and b"HTTPS server" in answers.error_body(response)
        except requests.exceptions.RequestException:
            tls_only = True  # not answering plain HTTP: see whether it speaks TLS
        if not tls_only:
            return "http"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                self.session.get(f"https://{host}/v2/", timeout=(5, 10), verify=False, allow_redirects=False)
        except requests.exceptions.RequestException:
            return "http"  # neither: keep plain HTTP, whose errors say what is wrong
        return "https"

    def _probe(self, host: str) -> str:
        try:
            self.session.get(f"https://{host}/v2/", timeout=(10, 15), verify=False, allow_redirects=False)
            return "https"
        except requests.exceptions.SSLError:
            return "http"
        except requests.exceptions.ConnectionError:
            return "http"
        except requests.exceptions.RequestException:
            return "https"

    # -- plain requests (token server) -----------------------------------------------------
    def _fetch_plain(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        deadline = Deadline(min(self.deadline, 120.0))
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    timeout=self._timeouts(),
                    verify=self._verify(url),
                    allow_redirects=False,
                    stream=True,
                    **kwargs,
                )
                answers.load(response, f"token request to {_origin(url)}")
            except requests.exceptions.RequestException as exc:
                if isinstance(exc, requests.exceptions.SSLError):  # retrying cannot help, and says so late
                    raise AuthError(
                        f"the token server {_origin(url)} failed TLS verification: {_short(exc)}",
                        hint="a token server must present a certificate this machine trusts (--insecure "
                        "covers the named registry only); for a private CA pass --ca-file",
                    ) from None
                if attempt + 1 >= MAX_ATTEMPTS:
                    raise AuthError(f"cannot reach the token server {_origin(url)}: {_short(exc)}") from None
                deadline.sleep(backoff_delay(attempt), f"token request to {_origin(url)}")
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < MAX_ATTEMPTS:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                deadline.sleep(
                    wait if wait is not None else backoff_delay(attempt), f"token request to {_origin(url)}"
                )
                attempt += 1
                continue
            return response

    def _timeouts(self) -> tuple[float, float]:
        return (min(10.0, self.timeout), self.timeout)

    # -- registry requests -----------------------------------------------------------------
    def request(self, call: ApiCall) -> requests.Response:
        """Send one API request, with auth, retries and redirects; returns the final answer.

        ``call.retry`` False sends it once as far as the network and 5xx go (auth is still renegotiated,
        which is safe because a 401 means the body was not accepted); the caller decides.
        """
        host, registry, retry = call.host, call.registry, call.retry
        what = call.label
        deadline = Deadline(self.deadline)
        scopes = list(call.scopes)
        attempt = 0
        auth_rounds = 0
        sent: str | None = None
        boundary = self.boundary(host)
        while True:
            sent = self.auth.header(host, registry, scopes)
            try:
                response = self._send(call, boundary, sent)
            except requests.exceptions.RequestException as exc:
                if isinstance(exc, requests.exceptions.SSLError):
                    raise RegistryError(
                        f"{what}: TLS failed: {_short(exc)}",
                        hint="if the registry's certificate comes from a private CA, pass --ca-file (or set "
                        "REQUESTS_CA_BUNDLE); --insecure turns verification off for that registry only",
                    ) from None
                if not retry or attempt + 1 >= MAX_ATTEMPTS:
                    raise RegistryError(
                        f"{what}: {_short(exc)}", hint="check that the registry is up and reachable"
                    ) from None
                deadline.sleep(backoff_delay(attempt), f"{what} ({_short(exc)})")
                attempt += 1
                continue
            status = response.status_code
            # Only the registry's own answers are challenges: storage elsewhere names no token realm.
            if boundary.owns(response.url) and (
                status == 401
                or (status == 403 and "insufficient_scope" in response.headers.get("WWW-Authenticate", ""))
            ):
                challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
                if not challenges or auth_rounds >= 2:  # ask (or re-ask) once, then give up
                    error = self._auth_error(what, response, registry, sent)
                    response.close()
                    raise error
                for challenge in challenges:
                    if challenge.error == "insufficient_scope":
                        scopes = sorted(set(scopes) | set(challenge.scopes))
                error = self._auth_error(what, response, registry, sent)
                response.close()
                if self.auth.challenged(host, registry, scopes, challenges, sent) is None:
                    raise error
                auth_rounds += 1
                continue
            if status in RETRY_STATUSES and retry and attempt + 1 < MAX_ATTEMPTS:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                deadline.sleep(
                    wait if wait is not None else backoff_delay(attempt), f"{what} (HTTP {status})"
                )
                attempt += 1
                continue
            return response

    def _auth_error(
        self, what: str, response: requests.Response, registry: str, sent: str | None
    ) -> AuthError:
        cred = self.auth.credentials.lookup(registry)
        who = f"as {cred.username!r}" if cred is not None and cred.username else "anonymously"
        return AuthError(
            f"{what}: the registry refused access {who} (HTTP {response.status_code}: {oci_errors(response)})",
            hint="check the credentials (DOCKER_HUB_USERNAME / DOCKER_HUB_KANIKO_PAT, or the Docker config) "
            "and that the account may access this repository",
        )

    def _send(self, call: ApiCall, boundary: Boundary, authorization: str | None) -> requests.Response:
        method, url, params, body, on_bytes, what = (
            call.method,
            call.url,
            call.params,
            call.body,
            call.on_bytes,
            call.label,
        )
        for _ in range(MAX_REDIRECTS + 1):
            boundary.check(url, what)
            send_headers = dict(call.headers or {})
            if sent := boundary.authorization(url, authorization):
                send_headers["Authorization"] = sent
            handle: BinaryIO | None = None
            data: Any = None
            if isinstance(body, FileBody):
                length = body.size()
                handle = open(body.path, "rb")  # noqa: SIM115 - closed below, once sent
                handle.seek(body.offset)
                data = Reader(handle, length, on_bytes)
                send_headers["Content-Length"] = str(length)
            elif body is not None:
                data = body
                send_headers["Content-Length"] = str(len(body))
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=send_headers,
                    params=params,
                    data=data,
                    stream=True,  # read here within limits (``answers``), or by the caller
                    timeout=self._timeouts(),
                    verify=self._verify(url),
                    allow_redirects=False,
                )
            finally:
                if handle is not None:
                    handle.close()
            if isinstance(body, bytes) and on_bytes is not None and response.status_code < 300:
                on_bytes(len(body))
            location = response.headers.get("Location")
            follow = response.status_code in (307, 308) or (
                response.status_code in (301, 302, 303) and method in ("GET", "HEAD")
            )
            if not follow or not location or not call.redirects:
                if not call.stream:
                    answers.load(response, what)
                return response
            response.close()
            url = urljoin(response.url, location)
            params = None  # the Location carries its own query
        raise RegistryError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _short(exc: BaseException) -> str:
    """A one-line description of a requests error, without URLs' query strings (they may be signed)."""
    kind = exc.__class__.__name__
    text = re.sub(r"\?[^\s)'\"]*", "?...", str(exc).split("\n", 1)[0])
    return f"{kind}: {text[:300]}"
