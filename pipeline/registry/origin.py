"""Whose URL is it: a registry's own origin, and what may follow it to URLs it names.

A registry names further URLs itself: an upload's ``Location``, a list's ``Link: rel="next"``, a
redirect (blob storage behind a registry is common). Only the registry's own origin (scheme, host,
port) gets its Authorization header (a Basic password or a Bearer token); a URL on another origin
is followed without it. A URL on plain HTTP is followed only for a registry that is itself spoken to
in plain HTTP by permission (a loopback registry, or one named ``--insecure``); for any other
registry it is refused, so nothing the registry asked for goes over the network in clear text.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import OriginError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of ``url`` (ports made explicit: ``https://h`` is ``https://h:443``)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return cls("", "", 0)  # matches no registry
        scheme = parts.scheme.lower()
        return cls(scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Boundary:
    """Where one registry's credentials may go, and whether plain HTTP may be followed for it."""

    registry: str  # the registry's host[:port], for messages
    origin: Origin
    plain_http: bool  # the registry is loopback or named insecure

    @classmethod
    def of(cls, host: str, scheme: str, plain_http: bool) -> Boundary:
        return cls(host, Origin.of(f"{scheme}://{host}"), plain_http)

    def owns(self, url: str) -> bool:
        """Whether ``url`` is on the registry's own origin (the only one its credentials go to)."""
        return Origin.of(url) == self.origin

    def authorization(self, url: str, header: str | None) -> str | None:
        """``header`` for a request to ``url``: kept on the registry's origin, dropped elsewhere."""
        return header if header and self.owns(url) else None

    def check(self, url: str, what: str) -> None:
        """Refuse a plain-HTTP URL for a registry that is neither loopback nor named insecure."""
        there = Origin.of(url)
        if there.scheme == "https" or (there.scheme == "http" and self.plain_http):
            return
        raise OriginError(
            f"{what}: the registry {self.registry} sent the client on to {there} (a URL it named: an "
            "upload location, a next page or a redirect); it is not followed, since only https is "
            "followed for a registry that is neither on loopback nor named --insecure",
            hint="the registry (or a proxy in front of it) must name https:// URLs; if this registry "
            "really is on a trusted network without TLS, name it with --insecure",
        )
