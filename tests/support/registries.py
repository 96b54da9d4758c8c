"""Fixtures that start real registries for integration tests (exposed through tests/conftest.py).

- ``registry``: an anonymous distribution registry (a fresh one per test).
- ``registry_htpasswd``: one with htpasswd (bcrypt) auth; user and password generated per run.
- ``token_registry``: one with token auth, behind :class:`~tests.support.tokenserver.TokenServer`, which
  signs real JWTs (RS256) that the registry verifies.
- ``fault_proxy``: a :class:`~tests.support.faultproxy.FaultProxy` in front of ``registry``.
- ``registry_factory`` / ``fault_proxy_factory``: make more (another auth, ES256 tokens, a proxy in front
  of an authenticated registry).

Every object has ``.url`` ("http://127.0.0.1:PORT") and ``.host`` ("127.0.0.1:PORT"); authenticated ones
have ``.username`` and ``.password``. Everything binds a free port on 127.0.0.1 and is stopped in teardown.
Passwords go to htpasswd on stdin, never in argv, and their files live in the test's temporary directory.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.services.distribution import LocalRegistry, TokenAuth
from tests.support.faultproxy import FaultProxy
from tests.support.tokenserver import TokenServer


def _require_registry() -> None:
    from tests.conftest import require_tool

    require_tool("docker-registry", "the integration tests run the distribution registry")


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """A bcrypt htpasswd file (what distribution accepts), the password passed on stdin."""
    from tests.conftest import require_tool

    htpasswd = require_tool("htpasswd", "it writes the registry's bcrypt password file")
    result = subprocess.run(
        [htpasswd, "-niB", username],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"htpasswd failed: {result.stderr.strip()}")
    path.write_text(result.stdout.strip() + "\n")
    path.chmod(0o600)
    return path


@dataclass
class AuthRegistry:
    """A running registry with credentials (htpasswd or token auth)."""

    registry: LocalRegistry
    username: str
    password: str
    tokens: TokenServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    @property
    def realm(self) -> str | None:
        return self.tokens.realm if self.tokens else None

    @property
    def service(self) -> str | None:
        return self.tokens.service if self.tokens else None


class Factory:
    """Starts registries, token servers and proxies, and stops all of them at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._stops: list[Callable[[], None]] = []
        self._n = 0

    def _dir(self, name: str) -> Path:
        self._n += 1
        path = self.tmp / f"{name}-{self._n}"
        path.mkdir(parents=True)
        return path

    def anonymous(self) -> LocalRegistry:
        _require_registry()
        reg = LocalRegistry(self._dir("registry"))
        self._stops.append(reg.stop)
        return reg.start()

    def htpasswd(self, username: str | None = None, password: str | None = None) -> AuthRegistry:
        _require_registry()
        root = self._dir("registry-htpasswd")
        username = username or f"user-{secrets.token_hex(4)}"
        password = password or secrets.token_urlsafe(18)
        path = write_htpasswd(root / "htpasswd", username, password)
        reg = LocalRegistry(root, htpasswd=path)
        self._stops.append(reg.stop)
        reg.start()
        return AuthRegistry(reg, username, password)

    def token(self, algorithm: str = "RS256", lifetime: float = 300.0) -> AuthRegistry:
        _require_registry()
        root = self._dir("registry-token")
        username = f"user-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(18)
        tokens = TokenServer(
            root / "tokens", username=username, password=password, algorithm=algorithm, lifetime=lifetime
        )
        tokens.start()
        self._stops.append(tokens.stop)
        auth = TokenAuth(
            realm=tokens.realm,
            service=tokens.service,
            issuer=tokens.issuer,
            rootcertbundle=tokens.rootcertbundle,
        )
        reg = LocalRegistry(root / "registry", token=auth)
        self._stops.append(reg.stop)
        reg.start()
        return AuthRegistry(reg, username, password, tokens)

    def proxy(self, upstream_url: str) -> FaultProxy:
        proxy = FaultProxy(upstream_url)
        self._stops.append(proxy.stop)
        return proxy.start()

    def close(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            with contextlib.suppress(Exception):  # keep stopping the rest
                stop()


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Factory]:
    factory = Factory(tmp_path / "registries")
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def registry(registry_factory: Factory) -> LocalRegistry:
    return registry_factory.anonymous()


@pytest.fixture
def registry_htpasswd(registry_factory: Factory) -> AuthRegistry:
    return registry_factory.htpasswd()


@pytest.fixture
def token_registry(registry_factory: Factory) -> AuthRegistry:
    return registry_factory.token()


@pytest.fixture
def fault_proxy(registry_factory: Factory, registry: LocalRegistry) -> FaultProxy:
    return registry_factory.proxy(registry.url)


@pytest.fixture
def fault_proxy_factory(registry_factory: Factory) -> Callable[[str], FaultProxy]:
    return registry_factory.proxy
