"""Issue 15 items 8 and 10: the parsers accept exactly the grammar, and one grammar serves the project.

Each refused case here was accepted before: a ``$`` anchor lets a trailing newline through, ``\\w``
lets non-ASCII letters through, and registry/tagplan.py had a host and tag grammar of its own.
"""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError, ImageError, ReferenceError_
from pipeline.oci import digests
from pipeline.policy import tagplan
from pipeline.registry.reference import Reference, is_loopback_host, validate_tag

HEX = "a" * 64
D = "sha256:" + HEX


@pytest.mark.parametrize("bad", [D + "\n", D + "\r\n", "sha256:" + "a" * 63 + "\u0661", "\n" + D])
def test_digest_with_a_trailing_newline_or_non_ascii_is_refused(bad: str) -> None:
    with pytest.raises(ImageError, match="digest"):
        digests.validate(bad)


@pytest.mark.parametrize("bad", ["v1\n", "v1\r", "vé", "v1\u0661", "\u00b2", "ǅ", "v" * 129])
def test_tags_are_ascii_and_whole(bad: str) -> None:
    with pytest.raises(ReferenceError_, match="invalid tag"):
        validate_tag(bad)
    with pytest.raises(ConfigError, match="not a valid tag"):
        tagplan.check_tag(bad)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("busybox:v1\n", "white space"),
        (f"busybox@{D}\n", "white space"),
        ("busybox:vé", "non-ASCII"),
        ("exämple.com/app", "non-ASCII"),
        (" busybox", "white space"),
    ],
)
def test_references_with_newlines_or_non_ascii_are_refused(text: str, says: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        Reference.parse(text)
    assert says in info.value.message


@pytest.mark.parametrize(
    "prefix",
    [
        "a..b/team",  # an empty DNS label
        "-reg.io/team",  # a label starting with '-'
        "reg-.io/team",
        "reg.io:99999/team",  # a port out of range
        "reg_io.com/team",
        "reg.io/tëam",
    ],
)
def test_prefixes_follow_the_reference_grammar(prefix: str) -> None:
    """tagplan's prefix check and Reference.parse agree: a prefix the reference parser refuses is refused."""
    with pytest.raises(ReferenceError_):
        Reference.parse(prefix + "/kaniko-executor")
    with pytest.raises(ConfigError):
        tagplan.normalize_prefix(prefix)


@pytest.mark.parametrize(
    "prefix", ["docker.io/me", "localhost:5000/a/b", "[::1]:5000/x", "127.0.0.1:5000", "reg.io/a__b/c-d"]
)
def test_good_prefixes_are_good_references(prefix: str) -> None:
    assert tagplan.normalize_prefix(prefix) == prefix
    Reference.parse(prefix + "/kaniko-executor:v1.25.16")


@pytest.mark.parametrize(
    "host", ["registry.localhost", "registry.localhost:5000", "a.b.localhost:1", "LOCALHOST.evil"]
)
def test_star_localhost_is_not_loopback(host: str) -> None:
    """Issue 15 item 10: only 127.0.0.0/8, ::1 and ``localhost`` itself are loopback."""
    assert is_loopback_host(host) is False
    assert Reference.parse(f"{host}/app").is_loopback is False
