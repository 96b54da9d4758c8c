"""Image references (``registry/repository[:tag][@digest]``), parsed and normalised as Docker does.

``x`` and ``docker.io/x`` both mean ``docker.io/library/x``; Docker Hub's API host is
``registry-1.docker.io``. The grammar is distribution's ``reference`` package.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from pipeline.errors import ImageError, ReferenceError_
from pipeline.oci import digests

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)

# The one reference grammar of the project (distribution's ``reference`` package), ASCII only and
# always matched whole (``fullmatch``): no ``$`` that lets a trailing newline through, no Unicode ``\w``.
_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:.]+\])(?::(?P<port>[0-9]{{1,5}}))?", re.ASCII)
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
TAG_RULE = "a tag is 1-128 of ASCII letters, digits, '_', '.', '-', not starting with '.' or '-'"
_MAX_NAME = 255


def is_tag(text: object) -> bool:
    return isinstance(text, str) and TAG.fullmatch(text) is not None


def is_component(text: object) -> bool:
    return isinstance(text, str) and COMPONENT.fullmatch(text) is not None


def is_host(text: object) -> bool:
    """``host[:port]`` as a reference may name it (the port, if any, 1-65535)."""
    if not isinstance(text, str):
        return False
    match = HOST.fullmatch(text)
    port = match.group("port") if match else None
    return match is not None and (port is None or 0 < int(port) < 65536)


_EXAMPLE = "e.g. docker.io/team/kaniko-executor:v1.25.16 or 127.0.0.1:5000/team/app@sha256:<64 hex>"


def is_loopback_host(host: str) -> bool:
    """True for a host on this machine: 127.0.0.0/8, ::1 or ``localhost`` itself, with or without a
    port (``127.0.0.1:5000``, ``[::1]:5000``, bare ``::1``). Plain HTTP is allowed for these only.

    ``*.localhost`` is not loopback here: whether it resolves to this machine depends on the resolver
    (and an /etc/hosts line can send it anywhere), so it gets TLS like any other name."""
    if not isinstance(host, str):
        return False
    name = host
    if name.startswith("["):  # [::1]:5000
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    name = name.lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of_prefix(prefix: str) -> str:
    """The API host a repository prefix (``docker.io/me``, ``127.0.0.1:5000/team``) is served from."""
    return Reference.parse(f"{prefix.strip().rstrip('/')}/kaniko-executor").host


def registry_of(image: str) -> str | None:
    """The registry an image reference names (``docker.io`` when it names none), or None when
    ``image`` is not a valid reference (a tool given it reports that itself)."""
    try:
        return Reference.parse(image).registry
    except ReferenceError_:
        return None


def _bad(text: str, why: str) -> ReferenceError_:
    return ReferenceError_(f"invalid image reference {text!r}: {why}", hint=f"write it as {_EXAMPLE}")


def _looks_like_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost" or part != part.lower()


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise ReferenceError_(f"invalid tag {tag!r}: {TAG_RULE}")
    return tag


def validate_digest(digest: str) -> str:
    try:
        return digests.validate(digest)
    except ImageError as exc:
        raise ReferenceError_(f"invalid digest in reference: {exc.message}") from None


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not isinstance(text, str) or not text.strip():
            raise _bad(str(text), "it is empty")
        original = text
        if not text.isascii():
            raise _bad(original, "it contains non-ASCII characters")
        if "://" in text:
            raise _bad(original, "leave out the scheme (http:// or https://)")
        if any(ch.isspace() for ch in text):
            raise _bad(original, "it contains white space")
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not digest:
                raise _bad(original, "nothing follows '@' (expected a digest such as sha256:<64 hex>)")
            try:
                digests.validate(digest)
            except ImageError as exc:
                raise _bad(original, exc.message) from None
        tag: str | None = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not is_tag(tag):
                raise _bad(original, f"tag {tag!r} is invalid: {TAG_RULE}")
        if not text:
            raise _bad(original, "the repository name is empty")
        first, sep, rest = text.partition("/")
        if sep and _looks_like_host(first):
            registry, path = first, rest
            match = HOST.fullmatch(registry)
            if not match:
                raise _bad(original, f"{registry!r} is not a valid registry host[:port]")
            if not is_host(registry):
                raise _bad(original, f"port {match.group('port')} is out of range")
            registry = DOCKER_HUB if registry.lower() in DOCKER_HUB_ALIASES else registry.lower()
        else:
            registry, path = DOCKER_HUB, text
        if not path:
            raise _bad(original, "the repository name is empty")
        for component in path.split("/"):
            if not component:
                raise _bad(
                    original, "the repository name has an empty path component ('//' or a trailing '/')"
                )
            if not is_component(component):
                if component.lower() != component and is_component(component.lower()):
                    raise _bad(original, f"repository names must be lowercase ({component!r})")
                raise _bad(
                    original,
                    f"{component!r} is not a valid repository path component "
                    "(lowercase letters and digits, separated by '.', '_', '__' or '-')",
                )
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if len(registry) + 1 + len(path) > _MAX_NAME:
            raise _bad(original, f"the name is longer than {_MAX_NAME} characters")
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    # -- derived forms --------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The host[:port] the API is served from."""
        return DOCKER_HUB_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The host without port (and without IPv6 brackets)."""
        host = self.registry
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.registry)

    @property
    def repo_str(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What names the manifest in the API: the digest if there is one, else the tag (or latest)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=validate_digest(digest), tag=None)

    def __str__(self) -> str:
        text = self.repo_str
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
