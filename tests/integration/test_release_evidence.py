"""The evidence a release attaches (signature, SBOM, provenance, test result), verified by two clients,
and `invoke reproduce` rebuilding the release from its provenance. Same fixture fork, real registry,
local Sigstore instance and podman as tests/integration/test_release.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline import config, release
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing.verify import Policy
from tests.support.releasefork import Fork, release_options
from tests.support.sigstore_fixtures import verify_with_sigstore_js

pytestmark = pytest.mark.slow

POLICY = Policy(localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER)


def _raw_bundles(registry: LocalRegistry, repository: str, digest: str) -> dict[str, list[bytes]]:
    """Every bundle attached to REPOSITORY@DIGEST, read raw over HTTP (fallback tag, manifest, blob),
    by the predicate type its statement claims."""
    import base64
    import json

    import requests

    from pipeline.oci import mediatype

    base = f"{registry.url}/v2/{repository}"
    accept = {"Accept": mediatype.OCI_INDEX + ", " + mediatype.OCI_MANIFEST}
    listed = requests.get(f"{base}/manifests/{digest.replace(':', '-')}", headers=accept, timeout=10)
    assert listed.status_code == 200, listed.text
    out: dict[str, list[bytes]] = {}
    for desc in listed.json()["manifests"]:
        artifact = requests.get(f"{base}/manifests/{desc['digest']}", headers=accept, timeout=10).json()
        for layer in artifact["layers"]:
            data = requests.get(f"{base}/blobs/{layer['digest']}", timeout=10).content
            envelope = json.loads(data)["dsseEnvelope"]
            kind = json.loads(base64.b64decode(envelope["payload"]))["predicateType"]
            out.setdefault(kind, []).append(data)
    return out


def _tamper(registry: LocalRegistry, repository: str, index_digest: str, path: str) -> str:
    """Push a copy of the index whose amd64 image has ``path`` changed in its layer; its digest."""
    import gzip
    import io
    import tarfile

    from pipeline.oci import digests
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.manifest import Index, Manifest, parse
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    ref = Reference.parse(f"{registry.host}/{repository}")
    with Client(credentials=Credentials.anonymous()) as client:
        index = parse(client.get_manifest(ref.with_digest(index_digest))[0])
        assert isinstance(index, Index)
        [platform] = index.manifests
        manifest = parse(client.get_manifest(ref.with_digest(platform.digest))[0])
        assert isinstance(manifest, Manifest)

        def tar(digest: str) -> tarfile.TarFile:
            return tarfile.open(fileobj=io.BytesIO(gzip.decompress(client.get_blob(ref, digest))))

        def names(digest: str) -> list[str]:
            with tar(digest) as archive:
                return [m.name.removeprefix("./").strip("/") for m in archive.getmembers()]

        i = next(n for n, layer in enumerate(manifest.layers) if path in names(layer.digest))
        layer = manifest.layers[i]
        out = io.BytesIO()
        with (
            tar(layer.digest) as source,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
        ):
            for member in source.getmembers():
                data = source.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
                if member.name.removeprefix("./").strip("/") == path:
                    data = b"changed by hand\n"
                    member.size = len(data)
                target.addfile(member, io.BytesIO(data) if data is not None else None)
        blob = gzip.compress(out.getvalue(), mtime=0)
        client.upload_blob(ref, blob)
        layers = list(manifest.layers)
        layers[i] = Descriptor(layer.media_type, digests.of_bytes(blob), len(blob))
        changed = Manifest(config=manifest.config, layers=layers, annotations=manifest.annotations)
        data = changed.to_bytes()
        client.put_manifest(ref.with_digest(digests.of_bytes(data)), data, changed.media_type)
        new_index = Index(
            manifests=[
                Descriptor(changed.media_type, digests.of_bytes(data), len(data), platform=platform.platform)
            ],
            annotations=index.annotations,
        )
        body = new_index.to_bytes()
        return client.put_manifest(ref.with_tag("tampered"), body, new_index.media_type)


def test_a_release_attaches_all_three_attestations_and_reproduce_rebuilds_it(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    sigstore_js: Path,
    tmp_path: Path,
) -> None:
    import dataclasses
    import json

    from pipeline.errors import VerifyError
    from pipeline.evidence.testresult import TEST_RESULT
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.signing import identity, trust
    from pipeline.stages import attest, reproduce

    settings, nginx = env
    first = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert first.status == "released"
    kinds: dict[str, int] = {}
    for item in first.attestations:
        kinds[item["predicate_type"]] = kinds.get(item["predicate_type"], 0) + 1
    variants = len(first.images)
    assert kinds == {
        attest.SLSA_PROVENANCE_V1: variants,
        attest.SPDX_DOCUMENT: variants,
        TEST_RESULT: variants,
    }
    markdown = Path(first.files["markdown"]).read_text()
    assert "cosign verify-attestation --type slsaprovenance1" in markdown
    assert "cosign verify-attestation --type spdxjson" in markdown

    trusts = [Path(first.signature["trust_config"])]  # the one the report names verifies everything
    with Client(credentials=Credentials.anonymous()) as client:
        configs = [trust.load(path) for path in trusts]
        executor = Reference.parse(f"{registry.host}/kaniko-executor:{first.tag}")
        for predicate in (attest.SLSA_PROVENANCE_V1, TEST_RESULT):
            found = attest.verify(executor, predicate, client=client, policy=POLICY, configs=configs)
            assert found.verified, found.explain()
            other = Policy("https://someone.else/ci", localsigstore.LOCAL_ISSUER)
            refused = attest.verify(executor, predicate, client=client, policy=other, configs=configs)
            assert not refused.verified and "do not match https://someone.else/ci" in refused.explain()
        digest = found.digest
        index = json.loads(client.get_manifest(executor.with_digest(digest))[0])
        [platform_digest] = [m["digest"] for m in index["manifests"]]
        [amd64] = [a for a in first.attestations if a["digest"] == platform_digest]
        assert amd64["predicate_type"] == attest.SPDX_DOCUMENT
        platform = Reference.parse(f"{registry.host}/kaniko-executor@{amd64['digest']}")
        sbom = attest.verify(platform, attest.SPDX_DOCUMENT, client=client, policy=POLICY, configs=configs)
        assert sbom.verified and sbom.predicate is not None and sbom.predicate["spdxVersion"] == "SPDX-2.3"

    # sigstore-js verifies one of each type, read raw from the registry
    raw = {
        **_raw_bundles(registry, "kaniko-executor", digest),
        **_raw_bundles(registry, "kaniko-executor", amd64["digest"]),
    }
    for predicate in (attest.SLSA_PROVENANCE_V1, attest.SPDX_DOCUMENT, TEST_RESULT):
        subject = amd64["digest"] if predicate == attest.SPDX_DOCUMENT else digest
        bundle = tmp_path / "bundle.json"
        bundle.write_bytes(raw[predicate][0])
        answers = [
            verify_with_sigstore_js(
                sigstore_js, bundle, trust, identity=POLICY.identity, issuer=POLICY.issuer, digest=subject
            )
            for trust in trusts
        ]
        assert any(a["verified"] and a["predicateType"] == predicate for a in answers), answers

    # reproduce: the published release rebuilds to the same digest, in a cache of its own. The
    # pipeline's cache is poisoned first, consistently (each executor and the sum binaries.json
    # records): a rebuild that used it would "reproduce" what the cache says (issue 21 item 4).
    _poison_binaries(settings.cache_dir)
    trust_config = str(next(p for p in trusts if _verifies(settings, executor, p)))
    with pytest.raises(VerifyError, match="no valid SLSA provenance from https://someone.else/ci"):
        reproduce.run(
            dataclasses.replace(settings, trust_config=Path(trust_config)),
            image=str(executor),
            certificate_identity="https://someone.else/ci",
            certificate_oidc_issuer=POLICY.issuer,
        )
    # an image changed by hand (one file in one layer), whose publisher attests the same provenance
    tampered = _tamper(registry, "kaniko-executor", digest, "etc/nsswitch.conf")
    with (
        Client(credentials=Credentials.anonymous()) as client,
        localsigstore.start(settings.cache_dir) as instance,
    ):
        found_provenance = attest.verify(
            executor, attest.SLSA_PROVENANCE_V1, client=client, policy=POLICY, configs=configs
        )
        claim = attest.Claim(
            Reference.parse(f"{registry.host}/kaniko-executor"),
            tampered,
            attest.SLSA_PROVENANCE_V1,
            found_provenance.predicate or {},
        )
        token = identity.parse(localsigstore.mint_identity_token(), "test")
        attest.attest([claim], client=client, config=trust.load(instance.trust_config), token=token)
        tampered_trust = str(instance.trust_root)  # the instance's own config is scratch, gone when it stops

    # the task, as a user runs it: exit 0 "reproduced", 1 with the file named, 1 for an image without
    # provenance, 2 for bad input. Each rebuild compiles in an empty cache, so only two rebuild.
    from tests.support.cli import run_invoke

    cli_env = {
        **os.environ,
        "INVOKE_PIPELINE_CACHE_DIR": str(settings.cache_dir),
        "INVOKE_PIPELINE_FORK_DIR": str(settings.fork_dir),
        "INVOKE_PIPELINE_FORK_URL": str(settings.fork_url),
        "HOME": settings.env["HOME"],
    }
    signer = ["--certificate-identity", POLICY.identity, "--certificate-oidc-issuer", POLICY.issuer]

    def task(image: str, trust: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return run_invoke(
            ["reproduce", "--image", image, *signer, "--trust-config", trust, *extra], env=cli_env
        )

    good = task(str(executor), trust_config)
    assert good.returncode == 0 and good.stdout.startswith("reproduced:"), good.stderr
    bad = task(f"{registry.host}/kaniko-executor@{tampered}", tampered_trust, "--json")
    assert bad.returncode == 1, bad.stderr
    report = json.loads(bad.stdout)
    assert report["reproduced"] is False
    files = [row for row in report["differences"] if row["kind"] == "File"]
    assert [row["name"] for row in files] == ["/etc/nsswitch.conf"], report
    assert "size=16" in files[0]["published"]
    nginx_image = task(f"{registry.host}/kaniko-nginx:{first.tag}", trust_config)
    assert nginx_image.returncode == 1 and "has no valid SLSA provenance" in nginx_image.stderr
    mirror = task(str(executor), trust_config, "--fork-url", str(tmp_path / "no-such-mirror"))
    assert mirror.returncode == 2 and "no-such-mirror" in mirror.stderr, mirror.stderr  # it is the URL used
    nonsense = task("UPPER/Case:::", trust_config)
    assert nonsense.returncode == 2 and "Traceback" not in nonsense.stderr
    for result in (good, bad, nginx_image):
        assert "Traceback" not in result.stderr


def _verifies(settings: config.Settings, ref: Reference, trust_config: Path) -> bool:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.signing import trust
    from pipeline.stages import attest

    with Client(credentials=Credentials.anonymous()) as client:
        found = attest.verify(
            ref, attest.SLSA_PROVENANCE_V1, client=client, policy=POLICY, configs=[trust.load(trust_config)]
        )
    return found.verified


def _poison_binaries(cache_dir: Path) -> None:
    """Replace every cached executor, and write its sum into binaries.json (as a cache writer can). The
    release's cache links to the binaries every release of this test process shares: it is poisoned in a
    copy of its own, or every later release on this worker would ship the poisoned executor."""
    import json
    import shutil

    from pipeline.oci.digests import of_file

    binaries = cache_dir / "binaries"
    if binaries.is_symlink():
        shared = binaries.resolve()
        binaries.unlink()
        shutil.copytree(shared, binaries, symlinks=True)
    entries = [path.parent for path in cache_dir.glob("binaries/*/binaries.json")]
    assert entries
    for entry in entries:
        (entry / "executor").write_bytes(b"#!/bin/sh\necho poisoned\n")
        sums = json.loads((entry / "binaries.json").read_text())
        sums["executor"] = of_file(entry / "executor")[0]
        (entry / "binaries.json").write_text(json.dumps(sums))
