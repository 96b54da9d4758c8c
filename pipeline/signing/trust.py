"""Which Sigstore instance to trust: a ClientTrustConfig file, or the public instance by default; and
:class:`Trust`, whom a release trusts (the signer's policy and its trust configs), loaded once.

A trust config whose services all live on loopback (as the local instance's do) is "local": its
signatures mean something only on this machine, so :func:`check_destination` refuses to sign an
image bound for any registry but a loopback one with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.errors import ConfigError, PipelineError, SignError, TrustRootError
from pipeline.registry.reference import is_loopback_host
from pipeline.signing.verify import Policy

if TYPE_CHECKING:  # sigstore takes a while to import: each function imports it when it runs
    from sigstore.models import ClientTrustConfig

CLIENT_TRUST_CONFIG = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"


@dataclass(frozen=True)
class SignedUnder:
    """A valid signature was found, under the trust config at ``path`` (None: the public instance's)."""

    path: str | None


@dataclass(frozen=True)
class Trust:
    """Whom a release trusts, loaded once at its start and handed to every stage that checks a
    signature or an attestation: the signer's identity and issuer (``policy``) and the trust configs
    that verify them, each with its path (None: the public instance). The first is the release's trust
    root: what it signs now verifies under it. No configs: nothing can be checked (a dry run that
    reaches no registry)."""

    policy: Policy
    configs: tuple[tuple[str | None, ClientTrustConfig], ...] = ()

    @property
    def usable(self) -> bool:
        return bool(self.configs)

    @property
    def loaded(self) -> list[ClientTrustConfig]:
        return [config for _, config in self.configs]

    @property
    def root(self) -> str | None:
        """The trust root's path (None: the public instance, or no config at all)."""
        return self.configs[0][0] if self.configs else None

    def config_at(self, path: str | None) -> ClientTrustConfig:
        """The loaded trust config of ``path`` (``None`` or ``""``: the trust root)."""
        for where, config in self.configs:
            if path and where == path:
                return config
        if not self.configs:
            raise TrustRootError("no trust config is loaded", hint="check the release's signing settings")
        return self.configs[0][1]

    @classmethod
    def of(cls, policy: Policy, paths: Sequence[str | None]) -> Trust:
        """Load each of ``paths`` (None: the public instance)."""
        return cls(policy, tuple((path, load(Path(path) if path else None)) for path in paths))


def load(path: Path | None, *, error: type[PipelineError] = ConfigError) -> ClientTrustConfig:
    """The trust config in ``path`` (a ClientTrustConfig JSON), or the public instance's."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    if path is None:
        try:
            return ClientTrustConfig.production()
        except (SigstoreError, OSError, ValueError) as exc:
            # Nothing the user typed is wrong here: it is a failure (exit 1), not bad input.
            raise TrustRootError(
                f"cannot fetch the public Sigstore instance's trust root (its TUF repository): {exc}",
                hint="check that this machine reaches the network; or pass --trust-config FILE (a "
                "ClientTrustConfig JSON) for another instance, e.g. the local one a release on the "
                "embedded defaults used (see README, 'Verify what a local run signed')",
            ) from exc
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(
            f"cannot read the trust config {path}: {exc.strerror or exc}",
            hint="pass --trust-config with the path of a ClientTrustConfig JSON file",
        ) from exc
    try:
        media_type = json.loads(text).get("mediaType")
    except (ValueError, AttributeError) as exc:
        raise error(f"the trust config {path} is not a JSON object", hint="check the file") from exc
    if media_type != CLIENT_TRUST_CONFIG:
        raise error(
            f"the trust config {path} has mediaType {media_type!r}, not {CLIENT_TRUST_CONFIG!r}",
            hint="pass a ClientTrustConfig (trustedRoot + signingConfig), as sigstore-python reads it",
        )
    try:
        config = ClientTrustConfig.from_json(text)
        config.trusted_root  # noqa: B018 - parse both halves now, to report a bad file by name
    except (SigstoreError, ValueError, TypeError, KeyError) as exc:
        raise error(f"the trust config {path} is malformed: {exc}", hint="check the file") from exc
    return config


def service_urls(config: ClientTrustConfig) -> list[str]:
    """The URLs of the Fulcio and Rekor services the trust config signs with."""
    inner = config._inner.signing_config
    return [s.url for s in (*inner.ca_urls, *inner.rekor_tlog_urls)]


def is_local(config: ClientTrustConfig) -> bool:
    """True when the instance it describes runs on this machine (all its services on loopback)."""
    urls = service_urls(config)
    tlogs = [t.base_url for t in config._inner.trusted_root.tlogs]
    hosts = [urlsplit(url).netloc for url in (*urls, *tlogs)]
    return bool(hosts) and any(is_loopback_host(host) for host in hosts)


def refuse_local_for(registry: str) -> None:
    """Raise SignError unless ``registry`` is on loopback (local signatures stay local)."""
    if not is_loopback_host(registry):
        raise SignError(
            f"refusing to sign an image in {registry} with a local Sigstore instance: its signatures "
            "are trusted nowhere else",
            hint="sign images bound for a real registry with a real Sigstore instance (the default, "
            "or --trust-config FILE for another one)",
        )


def check_destination(registry: str, config: ClientTrustConfig) -> None:
    """Refuse to sign an image bound for a non-loopback registry with a local instance."""
    if is_local(config):
        refuse_local_for(registry)
