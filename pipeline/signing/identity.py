"""The OIDC identity a keyless signature is bound to.

In order: an explicit token (``--identity-token`` or ``SIGSTORE_ID_TOKEN``), the CI's ambient
credential (GitHub Actions, GitLab CI ``id_tokens`` with ``aud: sigstore``, and the others sigstore
detects), and, only for a person at a terminal, the browser flow of the instance's OIDC provider.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.errors import SignError

if TYPE_CHECKING:  # sigstore takes a while to import: each function imports it when it runs
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken

TOKEN_ENV = "SIGSTORE_ID_TOKEN"


def parse(token: str, source: str) -> IdentityToken:
    """An IdentityToken from raw JWT text, or a SignError that names where it came from."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityError, IdentityToken

    try:
        return IdentityToken(token.strip())
    except (IdentityError, SigstoreError, ValueError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise SignError(
            f"the identity token from {source} is not usable: {exc}{cause}",
            hint="a Sigstore identity token is a JWT with iss, aud 'sigstore', sub, iat and exp",
        ) from None


def acquire(
    config: ClientTrustConfig,
    *,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    interactive: bool | None = None,
) -> IdentityToken:
    """The identity to sign as; never prints the token."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityError, Issuer, IssuerError, detect_credential

    if token:
        return parse(token, "--identity-token")
    env_token = (env or {}).get(TOKEN_ENV, "")
    if env_token.strip():
        return parse(env_token, TOKEN_ENV)
    try:
        ambient = detect_credential()
    except (IdentityError, SigstoreError) as exc:
        raise SignError(
            f"detecting the CI's OIDC credential failed: {exc}",
            hint="in GitHub Actions grant `id-token: write`; in GitLab CI declare `id_tokens` with "
            "`aud: sigstore`",
        ) from None
    if ambient:
        return parse(ambient, "the CI's ambient OIDC credential")
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if not interactive:
        raise SignError(
            "no identity to sign with: no --identity-token, no SIGSTORE_ID_TOKEN, no ambient CI "
            "credential, and no terminal for the browser flow",
            hint="run in CI with OIDC enabled, pass --identity-token, or set SIGSTORE_ID_TOKEN",
        )
    try:
        issuer = Issuer(config.signing_config.get_oidc_url())
        return issuer.identity_token()
    except (IdentityError, IssuerError, SigstoreError, OSError) as exc:
        raise SignError(
            f"the browser sign-in failed: {exc}", hint="try again, or pass --identity-token"
        ) from None
