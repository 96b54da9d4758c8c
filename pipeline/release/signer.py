"""The release's signing identity: whom it signs as, which trust configs it checks, who signed an image."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.registry.reference import is_loopback_host

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.config import Settings
    from pipeline.registry.client import Client


# How many trust configs of the local Sigstore instance (the kept one, then older ones) a check tries.
LOCAL_TRUST_CONFIGS = 20


@dataclass(frozen=True)
class Signing:
    """How the release signs and whom it trusts: a local Sigstore instance, or a configured one."""

    local: bool
    identity: str
    issuer: str
    trust_config: str | None  # None: the public instance (or, when local, each earlier local instance)
    identity_token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        where = "the local Sigstore instance" if self.local else (self.trust_config or "public Sigstore")
        return f"{self.identity} (issuer {self.issuer}, {where})"


def choose_signing(
    settings: Settings,
    registry: str,
    *,
    trust_config: str | None,
    identity_token: str | None,
    certificate_identity: str | None,
    certificate_oidc_issuer: str | None,
) -> Signing:
    """A local Sigstore instance for a loopback registry when nothing else is configured; else the
    configured instance, which needs the identity and issuer that verification checks."""
    from pipeline.services import localsigstore
    from pipeline.signing.identity import TOKEN_ENV

    configured = trust_config or (str(settings.trust_config) if settings.trust_config else None)
    explicit = bool(
        configured
        or identity_token
        or settings.env.get(TOKEN_ENV, "").strip()
        or certificate_identity
        or certificate_oidc_issuer
    )
    if not explicit and is_loopback_host(registry):
        return Signing(True, localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER, None)
    if not certificate_identity or not certificate_oidc_issuer:
        raise UsageError(
            f"releasing to {registry} signs with a real Sigstore instance, and checking those "
            "signatures needs the signer's identity",
            hint="pass --certificate-identity (the signing certificate's SAN, e.g. the workflow's "
            "URL in GitHub Actions) and --certificate-oidc-issuer",
        )
    return Signing(False, certificate_identity, certificate_oidc_issuer, configured, identity_token)


def _local_trust_configs(cache_dir: Path) -> list[Path]:
    """The local instance's kept trust root (every local run signs with its keys), then the trust configs
    of instances from before it was kept (each had keys of its own), newest first."""
    home = cache_dir / "sigstore"
    found = list(home.glob("*/trust_config.json"))
    found.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    kept = home / "trust_config.json"
    return ([kept] if kept.is_file() else []) + found[: LOCAL_TRUST_CONFIGS - 1]


def trust_configs(settings: Settings, signing: Signing) -> list[tuple[str | None, ClientTrustConfig]]:
    from pipeline.errors import ConfigError
    from pipeline.signing import trust

    if signing.local:
        out: list[tuple[str | None, ClientTrustConfig]] = []
        for found in _local_trust_configs(settings.cache_dir):
            with contextlib.suppress(ConfigError):  # an unreadable leftover is not a reason to fail
                out.append((str(found), trust.load(found)))
        return out
    return [(signing.trust_config, trust.load(Path(signing.trust_config) if signing.trust_config else None))]


def signed_by(
    client: Client,
    repository: str,
    digest: str,
    signing: Signing,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> str | None:
    """The trust config under which ``repository@digest`` has a valid signature from the identity
    (``""`` for the public instance), or None when it has none."""
    from pipeline.registry.reference import Reference
    from pipeline.signing.verify import Policy
    from pipeline.stages import verify_images

    policy = Policy(signing.identity, signing.issuer)
    ref = Reference.parse(f"{repository}@{digest}")
    index = verify_images.signed_under(client, ref, digest, policy, [config for _, config in configs])
    return None if index is None else (configs[index][0] or "")
