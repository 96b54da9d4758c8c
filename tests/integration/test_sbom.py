"""SPDX SBOMs and SLSA provenance from a real build of the fixture fork: checked against `go version -m`
and validated by spdx-tools (an SPDX validator from PyPI), not only by our own reading."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import VerifyError
from pipeline.evidence import provenance, sbom
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest
from pipeline.release import attestations
from pipeline.stages import build
from tests.conftest import require_tool
from tests.support import fixture_fork

pytestmark = pytest.mark.slow
VARIANTS = ("executor", "debug", "slim", "warmer")


class Built:
    def __init__(self, checkout: Any, result: build.BuildResult) -> None:
        self.checkout = checkout
        self.result = result
        self.layout = Layout.open(result.layout)
        # the fork from a credentialed URL: nothing of the credentials may reach an attestation
        pinned = dataclasses.replace(checkout, pinned=True)
        self.facts = attestations.build_facts(
            pinned, result.inputs, "https://bot:s3cret@git.example.test/kaniko.git"
        )

    def manifest(self, variant: str) -> tuple[str, Manifest]:
        index = self.layout.read_manifest(self.result.images[variant].index)
        assert isinstance(index, Index)
        [desc] = index.manifests
        manifest = self.layout.read_manifest(desc)
        assert isinstance(manifest, Manifest)
        return desc.digest, manifest

    def document(self, variant: str) -> dict[str, Any]:
        digest, manifest = self.manifest(variant)
        files = sbom.image_files(manifest, self.layout.read_blob)
        return sbom.document(self.facts, f"registry.test/kaniko-{variant}", digest, "linux/amd64", files)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, go_build_cache: Path) -> Built:
    require_tool("go", "the build compiles Go")
    require_tool("git", "the fixture fork is a git repository")
    root = tmp_path_factory.mktemp("sbom")
    digest = fixture_fork.make_busybox_layout(root / "busybox", platforms=("linux/amd64",))
    checkout = fixture_fork.make_fork(root / "fork", digest)
    result = build.build(
        checkout,
        build.BuildSpec(
            out=root / "out",
            cache_dir=root / "cache",
            platforms=("linux/amd64",),
            variants=VARIANTS,
            busybox=str(root / "busybox"),
            gocache=go_build_cache,
        ),
    )
    return Built(checkout, result)


def _pyspdxtools(path: Path) -> subprocess.CompletedProcess[str]:
    """`pyspdxtools -i FILE` (spdx-tools' CLI, from this environment)."""
    code = "import sys; from spdx_tools.spdx.clitools.pyspdxtools import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "-i", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def _purls(doc: dict[str, Any]) -> dict[str, str]:
    return {
        p["SPDXID"]: ref["referenceLocator"]
        for p in doc["packages"]
        for ref in p.get("externalRefs", [])
        if ref["referenceType"] == "purl"
    }


def _go_version_m(binary: Path) -> tuple[str, set[str]]:
    go = shutil.which("go")
    assert go is not None
    out = subprocess.run(
        [go, "version", "-m", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    lines = [line.split("\t") for line in out.splitlines()]
    version = out.split(":", 1)[1].split()[0]
    deps = {f"pkg:golang/{f[2]}@{f[3]}" for f in lines if len(f) > 3 and f[1] == "dep"}
    return version, deps


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_sbom_is_valid_spdx_and_lists_what_go_version_m_lists(
    built: Built, variant: str, tmp_path: Path
) -> None:
    doc = built.document(variant)
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(sbom.to_bytes(doc))
    # spdx-tools, the SPDX project's own validator: its CLI, and its Python API
    cli = _pyspdxtools(path)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed) == []
    assert parsed.creation_info.spdx_version == "SPDX-2.3"

    purls = _purls(doc)
    assert purls["SPDXRef-Image"].startswith("pkg:oci/kaniko-" + variant + "@sha256%3A")
    assert f"pkg:golang/{fixture_fork.MODULE}@{fixture_fork.TAG}" in purls.values()
    assert "s3cret" not in path.read_text() and "bot@" not in path.read_text()
    source = next(p for p in doc["packages"] if p["name"] == fixture_fork.MODULE)
    assert source["downloadLocation"] == f"git+https://git.example.test/kaniko@{built.checkout.commit}"
    assert {"certifi cacert.pem", "stdlib"} <= {p["name"] for p in doc["packages"]}
    kinds = {r["relationshipType"] for r in doc["relationships"]}
    assert {"DESCRIBES", "CONTAINS", "DEPENDS_ON"} <= kinds

    # every Go binary in the image: its modules exactly as `go version -m` reports them
    digest, manifest = built.manifest(variant)
    files = {f.path: f for f in sbom.image_files(manifest, built.layout.read_blob)}
    binaries = [name for name, f in files.items() if f.go is not None]
    assert binaries and all(name.startswith("kaniko/") for name in binaries)
    by_id = {p["SPDXID"]: p for p in doc["packages"]}
    for name in binaries:
        binary = next(p for p in doc["packages"] if p["name"] == "/" + name)
        depends = {
            purls[r["relatedSpdxElement"]]
            for r in doc["relationships"]
            if r["spdxElementId"] == binary["SPDXID"] and r["relationshipType"] == "DEPENDS_ON"
        }
        extracted = tmp_path / name.replace("/", "_")
        extracted.write_bytes(_file_bytes(built, manifest, name))
        go_version, deps = _go_version_m(extracted)
        assert f"pkg:golang/stdlib@{go_version.removeprefix('go')}" in depends
        assert deps <= depends, (name, deps - depends)
        assert binary["checksums"][0]["checksumValue"] == files[name].sha256
        assert by_id[binary["SPDXID"]]["primaryPackagePurpose"] == "APPLICATION"
    busybox = [p for p in doc["packages"] if p["name"] == "busybox"]
    if variant == "debug":
        assert busybox and busybox[0]["versionInfo"] == built.facts.busybox
    else:
        assert not busybox


def _file_bytes(built: Built, manifest: Manifest, name: str) -> bytes:
    import gzip
    import io
    import tarfile

    for layer in reversed(manifest.layers):
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(built.layout.read_blob(layer.digest)))) as tar:
            for member in tar:
                if member.name.lstrip("./") == name:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return handle.read()
    raise AssertionError(f"{name} not in the image")


def test_the_sbom_is_deterministic_and_a_local_source_has_no_download_location(
    built: Built, tmp_path: Path
) -> None:
    assert sbom.to_bytes(built.document("executor")) == sbom.to_bytes(built.document("executor"))
    local = attestations.build_facts(built.checkout, built.result.inputs, "https://unused.example.test/k.git")
    digest, manifest = built.manifest("executor")
    files = sbom.image_files(manifest, built.layout.read_blob)
    doc = sbom.document(local, "registry.test/kaniko-executor", digest, "linux/amd64", files)
    source = next(p for p in doc["packages"] if p["name"] == fixture_fork.MODULE)
    assert source["downloadLocation"] == "NOASSERTION" and built.checkout.commit in source["sourceInfo"]
    path = tmp_path / "local.spdx.json"
    path.write_bytes(sbom.to_bytes(doc))
    cli = _pyspdxtools(path)
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_the_provenance_names_its_inputs_and_gives_back_its_parameters(built: Built) -> None:
    body = provenance.predicate(
        built.facts,
        variant="debug",
        platforms=["linux/amd64"],
        builder_id="https://ci.example.test/release",
        invocation_id="https://ci.example.test/runs/7",
        started=1700000000.0,
        finished=1700000042.0,
        ca_bundle_digest="sha256:" + "e" * 64,
    )
    text = json.dumps(body)
    assert "s3cret" not in text and "bot@" not in text
    definition = body["buildDefinition"]
    assert definition["buildType"] == provenance.BUILD_TYPE
    assert definition["externalParameters"]["source"] == {
        "url": "https://git.example.test/kaniko",
        "tag": fixture_fork.TAG,
    }
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["source"] == {
        "uri": f"git+https://git.example.test/kaniko@refs/tags/{fixture_fork.TAG}",
        "digest": {"gitCommit": built.checkout.commit},
        "name": "source",
    }
    assert deps["busybox"]["digest"]["sha256"] == str(built.facts.busybox).removeprefix("sha256:")
    assert deps["ca-bundle"]["uri"].startswith("pkg:pypi/certifi@")
    assert deps["go"]["annotations"]["version"].startswith("go1.")
    assert "kaniko-pipeline" in deps
    run = body["runDetails"]
    assert run["builder"]["id"] == "https://ci.example.test/release"
    assert run["metadata"] == {
        "invocationId": "https://ci.example.test/runs/7",
        "startedOn": "2023-11-14T22:13:20Z",
        "finishedOn": "2023-11-14T22:14:02Z",
    }
    params = provenance.parameters(body)
    assert params.commit == built.checkout.commit and params.variant == "debug"
    assert params.source_date_epoch == fixture_fork.COMMIT_TIME
    definition["buildType"] = "https://example.test/other"
    with pytest.raises(VerifyError, match="buildType is 'https://example.test/other'"):
        provenance.parameters(body)
