"""A local Sigstore instance: Sigstore's own mock Fulcio, CT log and Rekor on 127.0.0.1.

The Node server (``sigstore_js/server.js``, ``@sigstore/mock`` from a committed lockfile) is
installed with ``npm ci`` into the cache at first use. It binds a free loopback port and writes a
ClientTrustConfig of its keys, which sigstore-python reads like any other instance's. The keys are made
once and kept in the cache (``<cache>/sigstore/keys.json``, mode 0600), so every instance started on
that cache has the same trust root, kept in ``<cache>/sigstore/trust_config.json``: that one file
verifies whatever any local run signed (signatures and every attestation). Signatures it makes are
trusted only by that trust root: it is for tests and for the all-local pipeline, and
:func:`pipeline.signing.trust.check_destination` keeps it away from real registries.

Identity tokens for it are minted here (:func:`mint_identity_token`): the local Fulcio checks the
claims a real Fulcio checks (audience, expiry) but, having no issuer to ask, not the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pipeline.errors import ToolError
from pipeline.progress import Progress, Silent
from pipeline.services import npm, process
from pipeline.system import require_program

SOURCE = Path(__file__).resolve().parent / "sigstore_js"

# The identity the all-local pipeline signs as. `.invalid` is a reserved name: never a real issuer.
LOCAL_ISSUER = "https://oidc.kaniko-pipeline.invalid"
LOCAL_IDENTITY = "https://kaniko-pipeline.invalid/local-signer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_identity_token(
    subject: str = LOCAL_IDENTITY,
    issuer: str = LOCAL_ISSUER,
    *,
    email: str | None = None,
    lifetime: int = 600,
    audience: str = "sigstore",
    now: float | None = None,
) -> str:
    """A JWT the local instance accepts: iss, aud, sub (and email), iat, nbf, exp.

    It is signed (HS256) with a random key that is thrown away: only the claims matter here.
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
    }
    if email is not None:
        claims["email"] = email
        claims["email_verified"] = True
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secrets.token_bytes(32), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(mac)}"


@dataclass
class LocalSigstore:
    """A running local instance. Stop it with :meth:`stop` (or use it as a context manager).

    ``trust_config`` is this instance's (its URLs: for signing); ``trust_root`` is the one kept for the
    keys it uses (for verifying what any instance with those keys signed)."""

    url: str
    trust_config: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log: Path = field(repr=False)
    trust_root: Path = field(default=Path(), repr=False)
    scratch: Path | None = field(default=None, repr=False)  # removed on stop

    def stop(self) -> None:
        process.stop(self.process, 10)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> LocalSigstore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start(
    cache_dir: Path,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> LocalSigstore:
    """Start the local instance on a free 127.0.0.1 port.

    With no ``workdir``, its keys are the cache's (``cache_dir/sigstore/keys.json``, made at first use)
    and its trust root is kept in ``cache_dir/sigstore/trust_config.json``; its own trust config and
    log go to a scratch directory removed when it stops. With a ``workdir`` (tests: an instance with
    keys of its own), all of them go there and stay.
    """
    progress = progress or Silent()
    installed = npm.install(SOURCE, cache_dir, why="the local Sigstore instance", progress=progress)
    node = require_program("node", "the local Sigstore instance needs it")
    home, scratch = workdir, None
    if workdir is None:
        home = cache_dir / "sigstore"
        (home / "instances").mkdir(parents=True, exist_ok=True)
        workdir = scratch = Path(tempfile.mkdtemp(prefix="local-", dir=home / "instances"))
    assert home is not None
    workdir.mkdir(parents=True, exist_ok=True)
    trust_config = workdir / "trust_config.json"
    log = workdir / "server.log"
    keys = home / "keys.json"
    with log.open("wb") as log_handle:
        server = subprocess.Popen(
            [node, str(installed / "server.js"), "--trust-config", str(trust_config), "--keys", str(keys)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_handle,
            cwd=installed,
            env={**os.environ, "NODE_ENV": "production"},
        )
    try:
        line = _first_line(server, timeout)
        info = json.loads(line)
        url = str(info["url"])
    except (ToolError, ValueError, KeyError, TypeError) as exc:
        process.stop(server, 10)
        tail = process.log_tail(log, 8)
        raise ToolError(
            f"the local Sigstore instance did not start: {exc}" + (f"\n{tail}" if tail else ""),
            hint=f"see {log}; `invoke setup` installs node and npm",
        ) from None
    root = keep_trust_root(trust_config, home / "trust_config.json")
    progress.info(f"local Sigstore instance at {url}, trust config {root}")
    return LocalSigstore(url, trust_config, server, log, trust_root=root, scratch=scratch)


def keep_trust_root(instance: Path, kept: Path) -> Path:
    """``kept``: a trust config with the instance's trust root, written when there is none yet or it
    holds other keys (the cache's keys were removed), atomically. Its service URLs are the first
    instance's: it is for verifying; signing uses each instance's own trust config."""
    if instance == kept:
        return kept
    new = json.loads(instance.read_text(encoding="utf-8"))
    try:
        old = json.loads(kept.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict) and _keys_of(old.get("trustedRoot")) == _keys_of(new.get("trustedRoot")):
        return kept
    tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, kept)
    return kept


def _keys_of(root: object) -> object:
    """A trusted root without its URLs (each instance has its own port): its keys and certificates."""
    if isinstance(root, dict):
        return {k: _keys_of(v) for k, v in root.items() if k not in ("baseUrl", "uri")}
    if isinstance(root, list):
        return [_keys_of(v) for v in root]
    return root


def _first_line(server: subprocess.Popen[bytes], timeout: float) -> str:
    assert server.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(server.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToolError(f"no answer within {timeout:.0f} s")
            if selector.select(remaining):
                chunk = os.read(server.stdout.fileno(), 4096)
                if not chunk:
                    raise ToolError(f"the server exited with status {server.wait()}")
                buffer += chunk
    return buffer.split(b"\n", 1)[0].decode("utf-8", errors="replace")
