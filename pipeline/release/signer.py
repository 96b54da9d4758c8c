"""The release's signing identity: whom it signs as (:class:`Signing`), the :class:`Trust` it checks
signatures with (:func:`trust_of`, loaded once per release), who signed an image (:func:`signed_by`), and
the :class:`Signer` every signing stage of the release shares."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UsageError
from pipeline.registry.reference import is_loopback_host
from pipeline.signing import trust
from pipeline.signing.trust import SignedUnder, Trust
from pipeline.signing.verify import Policy

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken

    from pipeline.config import Settings
    from pipeline.progress import Progress
    from pipeline.registry.client import Client
    from pipeline.services.localsigstore import LocalSigstore


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

    @property
    def policy(self) -> Policy:
        """The identity and issuer every signature of the release must carry."""
        return Policy(self.identity, self.issuer)

    def describe(self) -> str:
        where = "the local Sigstore instance" if self.local else (self.trust_config or "public Sigstore")
        return f"{self.identity} (issuer {self.issuer}, {where})"


def choose_signing(
    settings: Settings,
    registry: str,
    *,
    identity_token: str | None,
    certificate_identity: str | None,
    certificate_oidc_issuer: str | None,
) -> Signing:
    """A local Sigstore instance for a loopback registry when nothing else is configured; else the
    configured instance, which needs the identity and issuer that verification checks."""
    from pipeline.services import localsigstore
    from pipeline.signing.identity import TOKEN_ENV

    configured = str(settings.trust_config) if settings.trust_config else None
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


def trust_of(settings: Settings, signing: Signing) -> Trust:
    """The release's :class:`~pipeline.signing.trust.Trust`, loaded once: the local instance's kept trust
    root and older local ones (an unreadable leftover is skipped), or the configured instance's."""
    from pipeline.errors import ConfigError

    if not signing.local:
        return Trust.of(signing.policy, [signing.trust_config])
    out: list[tuple[str | None, ClientTrustConfig]] = []
    for found in _local_trust_configs(settings.cache_dir):
        with contextlib.suppress(ConfigError):  # an unreadable leftover is not a reason to fail
            out.append((str(found), trust.load(found)))
    return Trust(signing.policy, tuple(out))


def signed_by(client: Client, repository: str, digest: str, trusted: Trust) -> SignedUnder | None:
    """The trust config under which ``repository@digest`` has a valid signature from the identity, or
    None when it has none."""
    from pipeline.registry.reference import Reference
    from pipeline.stages import verify_images

    ref = Reference.parse(f"{repository}@{digest}")
    index = verify_images.signed_under(client, ref, digest, trusted.policy, trusted.loaded)
    return None if index is None else SignedUnder(trusted.configs[index][0])


class Signer:
    """Signs as the release's identity, in every stage that signs (sign, attest, test-result): with the
    configured instance (the trust root's own config), or with the release's one local Sigstore
    instance, started at first use (or by :meth:`keep_trust_root`) and stopped by :meth:`close`."""

    def __init__(self, settings: Settings, signing: Signing, progress: Progress) -> None:
        self.settings = settings
        self.signing = signing
        self.progress = progress
        self._local: LocalSigstore | None = None
        self._config: ClientTrustConfig | None = None

    def keep_trust_root(self) -> None:
        """A local release on a cache with no kept trust root, or no keys (an instance started now makes
        new ones, and keeps their trust root): start the instance now, so that the trust root its
        signatures verify under is kept before the release loads its :class:`Trust`."""
        home = self.settings.cache_dir / "sigstore"
        if self.signing.local and not (
            (home / "trust_config.json").is_file() and (home / "keys.json").is_file()
        ):
            self._start()

    def _start(self) -> LocalSigstore:
        from pipeline.services import localsigstore

        if self._local is None:
            self._local = localsigstore.start(self.settings.cache_dir, progress=self.progress)
        return self._local

    def session(self, trusted: Trust, registries: Sequence[str]) -> tuple[ClientTrustConfig, IdentityToken]:
        """The trust config to sign with and an identity token, for images bound for ``registries``
        (a local instance signs only for loopback ones)."""
        from pipeline.errors import SignError
        from pipeline.services import localsigstore
        from pipeline.signing import identity

        if self.signing.local:
            for registry in registries:
                trust.refuse_local_for(registry)
            instance = self._start()
            if self._config is None:
                self._config = trust.load(instance.trust_config, error=SignError)
            token = identity.parse(localsigstore.mint_identity_token(), "the local Sigstore instance")
            return self._config, token
        config = trusted.config_at(self.signing.trust_config)
        return config, identity.acquire(config, token=self.signing.identity_token, env=self.settings.env)

    def close(self) -> None:
        if self._local is not None:
            self._local.stop()
            self._local = None
