"""Registry authentication: the WWW-Authenticate challenge, Basic, and the Bearer token flow.

The token flow is Docker's (docs "Token Authentication Specification"): a 401 names a ``realm`` and
``service``; the client asks the realm for a token for the scopes it needs (every scope its own
``scope`` parameter), with Basic credentials when it has them (or an OAuth2 refresh-token POST for an
identity token), and reads ``token`` or ``access_token`` from the answer. Tokens are cached per host
and scope set until shortly before they expire; a 401 ``invalid_token`` drops the cached one.

The realm is named by the registry's answer, so a hostile or misconfigured registry chooses where
credentials go. They go only over TLS: a plain-HTTP realm is refused unless the registry and the realm
are both on loopback, and credentials never go to a realm whose scheme differs from the registry's.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from pipeline.errors import AuthError
from pipeline.registry.credentials import Credential, Credentials
from pipeline.registry.reference import is_loopback_host
from pipeline.urls import redact

TOKEN_MARGIN = 10.0  # seconds before a token's expiry that it is no longer used
DEFAULT_TOKEN_LIFETIME = 60.0  # the token spec's default for expires_in
CLIENT_ID = "kaniko-pipeline"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def error(self) -> str:
        return self.params.get("error", "")

    @property
    def scopes(self) -> list[str]:
        return [s for s in self.params.get("scope", "").split(" ") if s]


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in ' \t,="':
        i += 1
    return text[start:i], i


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value into its challenges (RFC 7235: quoted strings, escapes, commas)."""
    challenges: list[Challenge] = []
    text = header or ""
    i = 0
    current: Challenge | None = None
    while i < len(text):
        i = _skip_space(text, i)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        word, j = _token(text, i)
        if not word:
            if j < len(text) and text[j] == '"':  # a stray quoted string: skip all of it
                end = text.find('"', j + 1)
                i = len(text) if end < 0 else end + 1
            else:
                i = j + 1  # a stray character
            continue
        k = _skip_space(text, j)
        if k < len(text) and text[k] == "=" and current is not None:
            # a parameter of the current challenge
            k = _skip_space(text, k + 1)
            if k < len(text) and text[k] == '"':
                k += 1
                value_chars: list[str] = []
                while k < len(text) and text[k] != '"':
                    if text[k] == "\\" and k + 1 < len(text):
                        k += 1
                    value_chars.append(text[k])
                    k += 1
                value = "".join(value_chars)
                k += 1  # the closing quote
            else:
                start = k
                while k < len(text) and text[k] not in ",":
                    k += 1
                value = text[start:k].strip()
            current.params[word.lower()] = value
            i = k
            continue
        if k < len(text) and text[k] == "=" and current is None:
            i = k + 1  # a parameter without a scheme: ignore
            continue
        # a new challenge (scheme), maybe followed by a token68 or parameters
        current = Challenge(word.lower(), {})
        challenges.append(current)
        i = j
    return challenges


def basic_header(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _scope_key(host: str, scopes: Iterable[str]) -> tuple[str, frozenset[str]]:
    return host, frozenset(scopes)


@dataclass
class _Token:
    header: str
    expires: float


Fetch = Callable[..., requests.Response]


class Authenticator:
    """Holds what each host asked for and the tokens it gave, and answers with Authorization headers."""

    def __init__(self, credentials: Credentials, fetch: Fetch) -> None:
        self.credentials = credentials
        self._fetch = fetch
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, frozenset[str]], _Token] = {}
        self._fetch_locks: dict[tuple[str, frozenset[str]], threading.Lock] = {}
        self._schemes: dict[str, str] = {}

    def registry_scheme(self, host: str, scheme: str) -> None:
        """Note the scheme the registry ``host`` is spoken to with (the transport knows it)."""
        with self._lock:
            self._schemes[host] = scheme

    def _scheme_of(self, host: str) -> str:
        with self._lock:
            known = self._schemes.get(host)
        return known or ("http" if is_loopback_host(host) else "https")

    def _check_realm(self, host: str, realm: str, cred: Credential | None) -> None:
        """Refuse a realm that credentials or tokens must not go to (see the module's docstring)."""
        try:
            parts = urlsplit(realm)
            realm_host = parts.hostname or ""
            has_userinfo = parts.username is not None or parts.password is not None
        except ValueError:
            parts, realm_host, has_userinfo = urlsplit(""), "", False
        if parts.scheme not in ("https", "http") or not realm_host or has_userinfo:
            raise AuthError(
                f"{host} sent a Bearer challenge without a usable realm ({_shown(realm)})",
                hint="the registry's auth configuration must name an https:// token server",
            )
        origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
        registry_scheme = self._scheme_of(host)
        if parts.scheme == "http" and not (is_loopback_host(host) and is_loopback_host(realm_host)):
            raise AuthError(
                f"{host} names a plain-HTTP token realm ({origin}): credentials and tokens go only over "
                "TLS, so no token was asked for",
                hint="the registry's token server must be https:// (plain HTTP is accepted only when the "
                "registry and its token server are both on this machine's loopback)",
            )
        if cred is not None and parts.scheme != registry_scheme:
            raise AuthError(
                f"{host} is spoken to over {registry_scheme} but names a token realm over {parts.scheme} "
                f"({origin}): credentials are never sent to a realm on another scheme",
                hint="configure the registry's token realm with the registry's own scheme",
            )

    def _credential(self, registry: str) -> Credential | None:
        return self.credentials.lookup(registry)

    def header(self, host: str, registry: str, scopes: Iterable[str]) -> str | None:
        """The Authorization header to send now, fetching a token when the host's scheme needs one."""
        scopes = sorted(set(scopes))
        with self._lock:
            challenge = self._challenges.get(host)
            token = self._tokens.get(_scope_key(host, scopes))
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            cred = self._credential(registry)
            return basic_header(cred) if cred is not None and cred.has_basic else None
        if challenge.scheme != "bearer":
            return None
        if token is not None and token.expires > time.monotonic():
            return token.header
        return self._refresh(host, registry, scopes, challenge)

    def challenged(
        self, host: str, registry: str, scopes: Iterable[str], challenges: list[Challenge], sent: str | None
    ) -> str | None:
        """Handle a 401/403 answer; returns the header to retry with, or None if retrying cannot help."""
        scopes = sorted(set(scopes))
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            return None
        challenge = next((c for c in usable if c.scheme == "bearer"), usable[0])
        with self._lock:
            self._challenges[host] = challenge
            key = _scope_key(host, scopes)
            cached = self._tokens.get(key)
            if cached is not None and cached.header == sent:
                del self._tokens[key]
        if challenge.scheme == "basic":
            cred = self._credential(registry)
            if cred is None or not cred.has_basic:
                raise AuthError(
                    f"{host} requires a username and password and none is configured for {registry}",
                    hint="set DOCKER_HUB_USERNAME/DOCKER_HUB_KANIKO_PAT (Docker Hub) or `docker login` to it",
                )
            header = basic_header(cred)
            return None if header == sent else header
        return self._refresh(host, registry, scopes, challenge)

    def _refresh(self, host: str, registry: str, scopes: list[str], challenge: Challenge) -> str:
        key = _scope_key(host, scopes)
        with self._lock:
            lock = self._fetch_locks.setdefault(key, threading.Lock())
        with lock:  # one token request per scope set at a time, however many uploads wait for it
            with self._lock:
                token = self._tokens.get(key)
            if token is not None and token.expires > time.monotonic():
                return token.header
            token = self._fetch_token(host, registry, scopes, challenge)
            with self._lock:
                self._tokens[key] = token
            return token.header

    def _fetch_token(self, host: str, registry: str, scopes: list[str], challenge: Challenge) -> _Token:
        realm = challenge.realm
        cred = self._credential(registry)
        self._check_realm(host, realm, cred)
        service = challenge.params.get("service", "")
        started = time.monotonic()
        response: requests.Response
        if cred is not None and cred.identity_token:
            form: dict[str, Any] = {
                "grant_type": "refresh_token",
                "refresh_token": cred.identity_token,
                "service": service,
                "client_id": CLIENT_ID,
                "scope": " ".join(scopes),
            }
            response = self._fetch("POST", realm, data=form)
            if response.status_code in (404, 405):
                # An old token server without the OAuth2 endpoint: fall back to GET with the token.
                response = self._fetch(
                    "GET",
                    realm,
                    params=self._params(service, scopes),
                    headers={"Authorization": f"Bearer {cred.identity_token}"},
                )
        else:
            headers = {"Authorization": basic_header(cred)} if cred is not None and cred.has_basic else {}
            response = self._fetch("GET", realm, params=self._params(service, scopes), headers=headers)
        who = f"as {cred.username!r}" if cred is not None and cred.username else "anonymously"
        if response.status_code in (401, 403):
            raise AuthError(
                f"the token server of {host} refused a token {who} for {' '.join(scopes) or 'no scope'} "
                f"(HTTP {response.status_code})",
                hint="check the username and token (DOCKER_HUB_USERNAME / DOCKER_HUB_KANIKO_PAT, or the "
                "Docker config), and that the account may push to this repository",
            )
        if response.status_code != 200:
            raise AuthError(f"the token server of {host} answered HTTP {response.status_code} for a token")
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            raise AuthError(f"the token server of {host} did not answer JSON") from None
        if not isinstance(value, str) or not value:
            raise AuthError(f"the token server of {host} answered without a token")
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = max(lifetime - TOKEN_MARGIN, min(lifetime, TOKEN_MARGIN) / 2)
        return _Token(header=f"Bearer {value}", expires=started + lifetime)

    @staticmethod
    def _params(service: str, scopes: list[str]) -> list[tuple[str, str]]:
        params = [("service", service)] if service else []
        params += [("scope", scope) for scope in scopes]
        return params


def repository_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"


def _shown(url: str) -> str:
    """A realm for a message, redacted as every URL is (:func:`pipeline.urls.redact`)."""
    return repr(redact(url)[:200])
