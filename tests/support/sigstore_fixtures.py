"""Fixtures and helpers for signing tests: the local Sigstore instance and sigstore-js.

Import the fixtures into a test module (``from tests.support.sigstore_fixtures import local_sigstore``).
Node packages are installed with ``npm ci`` from committed lockfiles into a per-session cache.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.services import localsigstore, npm
from pipeline.signing import identity
from tests.conftest import require_tool
from tests.support.images import shared_test_cache

if TYPE_CHECKING:
    from sigstore.oidc import IdentityToken

SIGSTORE_JS = Path(__file__).resolve().parent / "sigstore_js"
# The identity and issuer of the test tokens the local instance accepts (any JWT with iss, aud, sub).
SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"


@pytest.fixture(scope="session")
def node_cache() -> Path:
    """Where the tests' node packages are installed: the shared test cache (tests/support/images.py), as
    the nginx base. Each package directory is named after its lockfile's hash and renamed into place
    when complete (pipeline/services/npm.py), so test processes running at once share it safely."""
    require_tool("node", "the local Sigstore instance and sigstore-js run on node")
    require_tool("npm", "node packages are installed with npm ci")
    return shared_test_cache()


@pytest.fixture(scope="session")
def local_sigstore(
    node_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[localsigstore.LocalSigstore]:
    with localsigstore.start(node_cache, workdir=tmp_path_factory.mktemp("sigstore")) as instance:
        yield instance


@pytest.fixture(scope="session")
def other_sigstore(
    node_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[localsigstore.LocalSigstore]:
    """A second instance with keys of its own: a trust root the first one's signatures fail."""
    with localsigstore.start(node_cache, workdir=tmp_path_factory.mktemp("sigstore-other")) as instance:
        yield instance


@pytest.fixture(scope="session")
def sigstore_js(node_cache: Path) -> Path:
    """The directory holding verify.js and its node_modules."""
    return npm.install(SIGSTORE_JS, node_cache, why="the sigstore-js verifier")


def verify_with_sigstore_js(
    tool_dir: Path,
    bundle: Path,
    trust_config: Path,
    *,
    identity: str,
    issuer: str,
    digest: str | None = None,
    artifact: Path | None = None,
) -> dict[str, Any]:
    """Run sigstore-js on a bundle; its JSON answer (``verified`` true or false, with ``error``)."""
    argv = [
        "node",
        str(tool_dir / "verify.js"),
        "--bundle",
        str(bundle),
        "--trust-config",
        str(trust_config),
        "--identity",
        identity,
        "--issuer",
        issuer,
    ]
    if digest:
        argv += ["--digest", digest]
    if artifact:
        argv += ["--artifact", str(artifact)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert result.stdout.strip(), f"verify.js printed nothing: {result.stderr}"
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert (result.returncode == 0) == bool(answer.get("verified")), result
    return answer


def seed_cache(node_cache: Path, cache: Path) -> Path:
    """A project cache dir whose node packages are the session's (npm ci runs once per session)."""
    npm.install(localsigstore.SOURCE, node_cache, why="the local Sigstore instance")
    (cache / "node").mkdir(parents=True, exist_ok=True)
    for installed in (node_cache / "node").iterdir():
        if not installed.name.startswith("."):
            (cache / "node" / installed.name).symlink_to(installed)
    return cache


def identity_token(subject: str = SIGNER, issuer: str = ISSUER) -> IdentityToken:
    """A test identity token for ``subject`` from ``issuer``, as the signing stages take it."""
    return identity.parse(localsigstore.mint_identity_token(subject, issuer), "test")
