"""Registry credentials: from the kaniko README's variables or from the Docker config.

Sources, first match wins:
1. ``DOCKER_HUB_USERNAME`` + ``DOCKER_HUB_KANIKO_PAT`` (Docker Hub only);
2. the Docker config (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[host]``, then ``credsStore``, then ``auths`` (``auth`` = base64 ``user:pass``, or
   ``identitytoken``). Helpers speak the ``docker-credential-<name> get`` protocol (server URL on
   stdin, JSON on stdout). Docker Hub's key is ``https://index.docker.io/v1/``.

A secret is never put in a repr, a message, argv or a file.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.errors import AuthError, ConfigError
from pipeline.registry.reference import DOCKER_HUB_ALIASES

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """A username and password (or PAT), or an OAuth2 identity (refresh) token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    def __repr__(self) -> str:
        secret = (
            "identity token ***"
            if self.identity_token
            else ("password ***" if self.password else "no secret")
        )
        return f"Credential(username={self.username!r}, {secret}, source={self.source!r})"

    __str__ = __repr__

    @property
    def has_basic(self) -> bool:
        return bool(self.username and self.password)


def _normalise_host(key: str) -> str:
    """Docker's convertToHostname: ``https://index.docker.io/v1/`` -> ``index.docker.io``."""
    key = key.strip()
    if "://" in key:
        key = urlsplit(key).netloc or key.split("://", 1)[1]
    key = key.split("/", 1)[0].lower()
    return "docker.io" if key in DOCKER_HUB_ALIASES else key


class Credentials:
    """Looks up the credential for a registry host (``docker.io``, ``127.0.0.1:5000``, ...)."""

    def __init__(
        self,
        static: Mapping[str, Credential] | None = None,
        *,
        config: Mapping[str, object] | None = None,
        config_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._static = {_normalise_host(host): cred for host, cred in (static or {}).items()}
        self._config = dict(config or {})
        self._config_path = config_path
        self._env = dict(env) if env is not None else dict(os.environ)
        self._cache: dict[str, Credential | None] = {}

    def __repr__(self) -> str:
        return f"Credentials(hosts={sorted(self._static)!r}, config={str(self._config_path)!r})"

    @classmethod
    def anonymous(cls) -> Credentials:
        return cls(env={})

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = dict(os.environ) if env is None else dict(env)
        static: dict[str, Credential] = {}
        user = env.get("DOCKER_HUB_USERNAME", "").strip()
        token = env.get("DOCKER_HUB_KANIKO_PAT", "").strip()
        if user and token:
            static["docker.io"] = Credential(user, token, source="DOCKER_HUB_USERNAME/DOCKER_HUB_KANIKO_PAT")
        elif token and not user:
            raise ConfigError(
                "DOCKER_HUB_KANIKO_PAT is set but DOCKER_HUB_USERNAME is not",
                hint="set DOCKER_HUB_USERNAME to the Docker Hub account the token belongs to",
            )
        config_dir = env.get("DOCKER_CONFIG")
        if config_dir:
            path = Path(config_dir) / "config.json"
        else:
            home = env.get("HOME") or str(Path.home())
            path = Path(home) / ".docker" / "config.json"
        config: dict[str, object] = {}
        if path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"the Docker config {path} is not readable JSON: {exc.__class__.__name__}",
                    hint="fix or remove it, or point DOCKER_CONFIG at another directory",
                ) from None
            if not isinstance(loaded, dict):
                raise ConfigError(f"the Docker config {path} is not a JSON object")
            config = loaded
        return cls(static, config=config, config_path=path, env=env)

    def has_any(self) -> bool:
        """True when some credential is configured (for choosing the embedded default)."""
        return bool(
            self._static
            or self._config.get("auths")
            or self._config.get("credsStore")
            or self._config.get("credHelpers")
        )

    # -- lookup ---------------------------------------------------------------------------
    def lookup(self, host: str) -> Credential | None:
        key = _normalise_host(host)
        if key not in self._cache:
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: str) -> Credential | None:
        if key in self._static:
            return self._static[key]
        server = DOCKER_HUB_KEY if key == "docker.io" else key
        helpers = self._config.get("credHelpers")
        if isinstance(helpers, dict):
            for name, helper in helpers.items():
                if _normalise_host(str(name)) == key and helper:
                    return self._from_helper(str(helper), server, str(name))
        store = self._config.get("credsStore")
        if isinstance(store, str) and store:
            cred = self._from_helper(store, server, server)
            if cred is not None:
                return cred
        auths = self._config.get("auths")
        if isinstance(auths, dict):
            exact = [name for name in auths if name == server]
            others = [name for name in auths if name != server and _normalise_host(str(name)) == key]
            for name in exact + others:
                entry = auths[name]
                if isinstance(entry, dict):
                    cred = self._from_auth_entry(entry, str(name))
                    if cred is not None:
                        return cred
        return None

    def _from_auth_entry(self, entry: Mapping[str, object], name: str) -> Credential | None:
        where = f"{self._config_path} auths[{name!r}]"
        identity = str(entry.get("identitytoken") or "")
        user = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                decoded = base64.b64decode(auth, validate=False).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ConfigError(f"{where}.auth is not base64 of user:password") from None
            if ":" not in decoded:
                raise ConfigError(f"{where}.auth does not decode to user:password")
            user, password = decoded.split(":", 1)
        if identity:
            return Credential(user, "", identity, source=where)
        if user and password:
            return Credential(user, password, source=where)
        return None

    def _from_helper(self, helper: str, server: str, name: str) -> Credential | None:
        program = f"docker-credential-{helper}"
        path = shutil.which(program, path=self._env.get("PATH"))
        if path is None:
            raise AuthError(
                f"the Docker config names the credential helper {helper!r} for {name}, "
                f"but {program} is not on PATH",
                hint=f"install {program}, or remove it from {self._config_path}",
            )
        try:
            done = subprocess.run(
                [path, "get"],
                input=server.encode(),
                capture_output=True,
                timeout=HELPER_TIMEOUT,
                env=self._env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuthError(f"credential helper {program} failed to run: {exc.__class__.__name__}") from None
        if done.returncode != 0:
            out = done.stdout.decode(errors="replace").strip().lower()
            if "credentials not found" in out or "not found" in out:
                return None
            # Never echo the helper's output: it may hold a secret.
            raise AuthError(
                f"credential helper {program} exited with status {done.returncode} for {server}",
                hint=f"run `echo {server} | {program} get` yourself to see why",
            )
        try:
            answer = json.loads(done.stdout)
            user = str(answer.get("Username") or "")
            secret = str(answer.get("Secret") or "")
        except (ValueError, AttributeError):
            raise AuthError(f"credential helper {program} did not answer JSON for {server}") from None
        if not secret:
            return None
        source = f"docker-credential-{helper}"
        if user == "<token>":
            return Credential("", "", secret, source=source)
        return Credential(user, secret, source=source)
