"""Issue 21 item 6: what a registry writer attaches to a digest cannot make a reader unbounded.

A real registry holds an image signed by the local Sigstore instance, and attached to it (the
referrers tag schema, as on Docker Hub): 10,000 junk referrers, a 1 GiB "bundle" whose descriptor
says so, and one that names the same blob as 2,000 bytes (``tests/support/crowded.py``). `invoke
verify` and the release's check (``inspect_registry``, in a process of its own) must still find the
genuine signature, say what they did not read and why, and read a bounded number of manifests and
bytes: counted by a proxy in front of the registry, and measured as the process's peak memory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import LimitError, RegistryError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import list_referrers
from pipeline.services import localsigstore
from pipeline.signing import attach, identity, trust
from pipeline.stages import sign
from tests.support.cli import ROOT
from tests.support.crowded import Crowd, crowd
from tests.support.faultproxy import FaultProxy
from tests.support.httpserver import LoopbackServer
from tests.support.layouts import build_image
from tests.support.peak import measure
from tests.support.registries import Factory
from tests.support.sigstore_fixtures import local_sigstore, node_cache  # noqa: F401 - fixtures

SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"
PEAK_MIB = 400  # far under the 1 GiB blob, far over what verifying takes


@dataclass
class Crowded:
    proxy: FaultProxy
    image: Descriptor
    crowd: Crowd
    trust_config: Path

    @property
    def repository(self) -> str:
        return f"{self.proxy.host}/team/kaniko-executor"


@pytest.fixture(scope="module")
def crowded(
    tmp_path_factory: pytest.TempPathFactory,
    local_sigstore: localsigstore.LocalSigstore,  # noqa: F811
) -> Iterator[Crowded]:
    root = tmp_path_factory.mktemp("crowded")
    factory = Factory(root / "registries")
    try:
        registry = factory.anonymous()
        repo = Reference.parse(f"{registry.host}/team/kaniko-executor:v1.0.0")
        with Client(credentials=Credentials.anonymous()) as client:
            layout, top = build_image(root / "layout")
            client.push_layout(layout, top, repo)
            token = identity.parse(localsigstore.mint_identity_token(SIGNER, ISSUER), "test")
            target = sign.Target("executor", repo, top.digest)
            sign.sign([target], client=client, config=trust.load(local_sigstore.trust_config), token=token)
            many = crowd(client, repo, top, count=10_000, big=1 << 30, storage=registry.storage)
        yield Crowded(factory.proxy(registry.url), top, many, local_sigstore.trust_config)
    finally:
        factory.close()


def _bounded_reads(crowded: Crowded, passes: int) -> None:
    proxy = crowded.proxy
    manifests = proxy.count("GET", r"/manifests/sha256:")
    assert manifests <= passes * (attach.MAX_REFERRERS + 2), manifests
    assert proxy.count("GET", f"/blobs/{crowded.crowd.big.digest}") <= passes  # the liar's, refused unread


@pytest.mark.slow  # an invoke process reads through 10,000 referrers and a proxy that counts: 15-20 s
def test_invoke_verify_is_bounded_and_says_what_it_did_not_read(crowded: Crowded, tmp_path: Path) -> None:
    crowded.proxy.reset_counts()
    env = {**os.environ, "INVOKE_PIPELINE_CACHE_DIR": str(tmp_path / "cache")}
    image = f"{crowded.repository}@{crowded.image.digest}"
    args = ["--certificate-identity", SIGNER, "--certificate-oidc-issuer", ISSUER]
    run = measure(
        [sys.executable, "-m", "invoke", "verify", "--image", image, *args,
         "--trust-config", str(crowded.trust_config), "--json"],
        env=env, cwd=str(ROOT), timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["verified"] is True
    reasons = {s["source"]: s.get("reason", "") for s in result["signatures"]}
    assert "over the 16 MiB a bundle may have: not fetched" in reasons[crowded.crowd.big_referrer]
    assert "longer than its descriptor's 2000" in reasons[crowded.crowd.liar_referrer]
    older = reasons[f"{10_003 - attach.MAX_REFERRERS} older referrer(s)"]
    assert f"10003 referrers are attached to {crowded.image.digest}, and only the newest 128" in older
    assert [s["verified"] for s in result["signatures"]].count(True) == 1
    _bounded_reads(crowded, passes=1)
    assert run.peak_mib < PEAK_MIB, run.peak_mib


@pytest.mark.slow  # the release's check, three passes over the crowded digest: 25-30 s
def test_the_release_check_is_bounded(crowded: Crowded) -> None:
    crowded.proxy.reset_counts()
    prefix = crowded.repository.rsplit("/", 1)[0]
    run = measure(
        [sys.executable, "-m", "tests.support.release_check", prefix, "1.0.0",
         str(crowded.trust_config), SIGNER, ISSUER],
        cwd=str(ROOT), timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    assert state["signed"] is True and state["tested"] is None
    assert state["version_tags"] == {"v1.0.0": crowded.image.digest}
    _bounded_reads(crowded, passes=3)  # the signature, the provenance, then the test results
    assert run.peak_mib < PEAK_MIB, run.peak_mib


class _Flood(LoopbackServer):
    """A registry front that answers with big bodies: a referrers page of ``page`` bytes (a valid OCI
    index), and error answers (HTTP 400) of ``error`` bytes; it counts the bytes it got out."""

    name = "flood"

    def __init__(self, page: int, error: int) -> None:
        super().__init__()
        self.page, self.error, self.sent = page, error, 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        flood = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _body(self, status: int, content_type: str, size: int, head: bytes, fill: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    self.wfile.write(head)
                    flood.sent += len(head)
                    while flood.sent < size:
                        self.wfile.write(fill)
                        flood.sent += len(fill)
                except OSError:
                    return  # the client hung up: what it did not read was never sent

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/v2/":  # the client's first question: plain HTTP?
                    self._body(200, "application/json", 2, b"{}", b"")
                elif "/referrers/" in self.path:
                    entry = json.dumps(
                        {"mediaType": mediatype.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 1}
                    ).encode()
                    count = flood.page // (len(entry) + 1)
                    body = b'{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' % (
                        mediatype.OCI_INDEX.encode(),
                        b",".join([entry] * count),
                    )
                    self._body(200, mediatype.OCI_INDEX, len(body), body, b"")
                else:
                    head = b'{"errors":[{"code":"DENIED","message":"no"}]}'
                    self._body(400, "application/json", flood.error, head, b" " * 65536)

        return Handler


def test_a_referrers_page_over_the_limit_is_refused_with_a_message() -> None:
    with _Flood(page=5 << 20, error=0) as flood, Client(credentials=Credentials.anonymous()) as client:
        ref = Reference.parse(f"{flood.host}/team/app")
        with pytest.raises(LimitError) as info:
            list_referrers(client, ref, "sha256:" + "a" * 64)
    assert "list referrers of sha256:" in info.value.message
    assert "the registry's answer is over 4 MiB; the client reads no more" in info.value.message


def test_an_error_answer_is_read_only_up_to_its_limit() -> None:
    with _Flood(page=0, error=256 << 20) as flood, Client(credentials=Credentials.anonymous()) as client:
        ref = Reference.parse(f"{flood.host}/team/app:v1")
        with pytest.raises(RegistryError) as info:
            client.find_manifest(ref)
    assert "HTTP 400 DENIED: no" in info.value.message
    assert flood.sent < 32 << 20, flood.sent  # 64 KiB read; the rest never left the server's buffers
