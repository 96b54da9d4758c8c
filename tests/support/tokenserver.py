"""A token server for tests: the Docker registry token flow, issuing real signed JWTs.

It answers ``GET /token?service=S&scope=A&scope=B`` (each scope its own parameter, as Docker Hub wants) and
``POST /token`` (the OAuth2 password grant some clients use), checks Basic credentials, and returns a
JWT signed with RS256 or ES256 whose ``access`` claim grants what was asked. The distribution registry
verifies it against ``rootcertbundle`` (a self-signed certificate for the signing key); the header
carries both the certificate chain (``x5c``) and the libtrust key id (``kid``) that distribution 2.8
looks up in that bundle.

Tests steer it through attributes: ``lifetime`` (seconds a token is valid, e.g. 2 to let a token expire
in the middle of a push), ``token_field`` ("token", "access_token" or "both"), ``anonymous_pull``,
``deny`` (repositories no one may push to). Every request is recorded in ``requests``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.certs import self_signed
from tests.support.httpserver import LoopbackServer

ALL_ACTIONS = ("pull", "push", "delete", "*")
REGISTRY_LEEWAY = 60  # seconds distribution's token check allows past exp (and before nbf)


def libtrust_key_id(public_key: Any) -> str:
    """The key id distribution 2.8 gives a key in its rootcertbundle (docker/libtrust's KeyID)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der).digest()[:30]
    text = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass
class TokenRequest:
    """One request the server answered (for assertions)."""

    method: str
    account: str | None
    service: str | None
    scopes: list[str]
    status: int


@dataclass
class Grant:
    type: str
    name: str
    actions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": self.actions}


def parse_scope(scope: str) -> Grant | None:
    """``repository:name/with:port?:pull,push`` -> Grant. The name may hold colons (a registry port)."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    kind, actions = parts[0], parts[-1]
    name = ":".join(parts[1:-1])
    return Grant(kind, name, [a for a in actions.split(",") if a])


class TokenServer(LoopbackServer):
    name = "token-server"

    def __init__(
        self,
        workdir: Path,
        *,
        username: str,
        password: str,
        service: str = "kaniko-pipeline-test-registry",
        issuer: str = "kaniko-pipeline-test-issuer",
        algorithm: str = "RS256",
        lifetime: float = 300.0,
    ) -> None:
        super().__init__()
        if algorithm not in ("RS256", "ES256"):
            raise ValueError("algorithm must be RS256 or ES256")
        self.workdir = Path(workdir)
        self.username = username
        self.password = password
        self.service = service
        self.issuer = issuer
        self.algorithm = algorithm
        self.lifetime = lifetime
        self.token_field = "both"
        self.anonymous_pull = False
        self.deny: set[str] = set()
        self.requests: list[TokenRequest] = []
        self.issued = 0
        self._lock = threading.Lock()
        self._make_key()

    # -- keys --------------------------------------------------------------------------------------
    def _make_key(self) -> None:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if self.algorithm == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        cert = self_signed(key, self.issuer, valid_for=datetime.timedelta(days=2), ca=True)
        self.key = key
        self.certificate = cert
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rootcertbundle = self.workdir / "token-root.pem"
        self.rootcertbundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(key.public_key())
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    # -- tokens ------------------------------------------------------------------------------------
    def check_basic(self, header: str | None) -> str | None | bool:
        """The account for good Basic credentials, None when none were given, False when they are wrong."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self.username.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return user if ok_user and ok_password else False

    def grants(self, account: str | None, scopes: list[str]) -> list[Grant]:
        granted = []
        for scope in scopes:
            grant = parse_scope(scope)
            if grant is None:
                continue
            if account is None:
                allowed = ["pull"] if self.anonymous_pull and grant.type == "repository" else []
            elif grant.type == "repository" and grant.name in self.deny:
                allowed = ["pull"]
            else:
                allowed = list(ALL_ACTIONS)
            actions = [a for a in grant.actions if a in allowed]
            if "*" in grant.actions and "*" in allowed:
                actions = ["*"]
            granted.append(Grant(grant.type, grant.name, actions))
        return granted

    def issue(self, account: str | None, scopes: list[str]) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.lifetime
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            # distribution 2.8 accepts a token up to REGISTRY_LEEWAY seconds past its exp: take that off
            # so that a token stops working after `lifetime` seconds, as expires_in says.
            "exp": now + max(0, int(lifetime)) - REGISTRY_LEEWAY,
            "nbf": now - 1 - REGISTRY_LEEWAY,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [g.to_dict() for g in self.grants(account, scopes)],
        }
        token = jwt.encode(
            claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid, "x5c": self._x5c}
        )
        with self._lock:
            self.issued += 1
        body: dict[str, Any] = {
            "expires_in": int(lifetime),
            "issued_at": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(),
        }
        if self.token_field in ("token", "both"):
            body["token"] = token
        if self.token_field in ("access_token", "both"):
            body["access_token"] = token
        return body

    def record(self, entry: TokenRequest) -> None:
        with self._lock:
            self.requests.append(entry)


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet; never logs secrets
            return

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, method: str, params: dict[str, list[str]], account: str | None | bool) -> None:
            scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
            service = next(iter(params.get("service") or []), None)
            if account is False:
                server.record(TokenRequest(method, None, service, scopes, 401))
                self._send(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]},
                    {"WWW-Authenticate": 'Basic realm="kaniko-pipeline-test"'},
                )
                return
            if service is not None and service != server.service:
                server.record(TokenRequest(method, None, service, scopes, 400))
                self._send(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
                return
            acct = account if isinstance(account, str) else None
            server.record(TokenRequest(method, acct, service, scopes, 200))
            self._send(200, server.issue(acct, scopes))

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path != "/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND", "message": parts.path}]})
                return
            self._answer("GET", parse_qs(parts.query), server.check_basic(self.headers.get("Authorization")))

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(errors="replace"))
            if parts.path != "/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND", "message": parts.path}]})
                return
            grant = (form.get("grant_type") or [""])[0]
            account: str | None | bool
            if grant == "password":
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                good = hmac.compare_digest(user.encode(), server.username.encode()) and hmac.compare_digest(
                    password.encode(), server.password.encode()
                )
                account = user if good else False
            else:
                account = server.check_basic(self.headers.get("Authorization"))
            self._answer("POST", form, account)

    return Handler
