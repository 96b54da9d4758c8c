"""An SPDX 2.3 JSON SBOM for one platform image, from what the image holds.

Read from the image's own layers: every Go binary is described by its embedded build info (the
modules ``go version -m`` lists, as ``pkg:golang/<module>@<version>``, and the toolchain as
``pkg:golang/stdlib@<version>``); the main module is the fork at its tag, with the git URL (never
with credentials) and commit it was built from; the CA bundle is certifi's; debug's busybox is the
pinned image digest. Relationships: the document DESCRIBES the image, the image CONTAINS the
binaries, CA bundle and busybox, each binary DEPENDS_ON its modules and the standard library and is
GENERATED_FROM the fork source. Deterministic: no clock, no random IDs, sorted, so the same image
and facts give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.errors import ImageError
from pipeline.evidence.buildfacts import BuildFacts
from pipeline.golang import buildinfo
from pipeline.image.assemble import rfc3339
from pipeline.oci.manifest import Manifest

SPDX_DOCUMENT = "https://spdx.dev/Document"
CA_BUNDLE_PATH = "kaniko/ssl/certs/ca-certificates.crt"
BUSYBOX_REPOSITORY = "index.docker.io/library/busybox"
NOASSERTION = "NOASSERTION"


@dataclass(frozen=True)
class File:
    path: str  # inside the image, without the leading /
    sha256: str
    size: int
    go: buildinfo.BuildInfo | None = None


def image_files(manifest: Manifest, blob: Callable[[str], bytes]) -> list[File]:
    """The regular files of an image (later layers win), with the Go build info of Go binaries."""
    found: dict[str, File] = {}
    for layer in manifest.layers:
        data = blob(layer.digest)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                for member in archive:
                    name = member.name.removeprefix("./").lstrip("/")
                    if not member.isreg():
                        found.pop(name, None)
                        continue
                    handle = archive.extractfile(member)
                    content = handle.read() if handle is not None else b""
                    go = None
                    if content[:4] == b"\x7fELF":
                        try:
                            go = buildinfo.parse(content, name)
                        except ImageError:
                            go = None
                    found[name] = File(name, hashlib.sha256(content).hexdigest(), len(content), go)
        except tarfile.TarError as exc:
            raise ImageError(f"layer {layer.digest} is not a tar archive: {exc}") from None
    return [found[name] for name in sorted(found)]


def _id(kind: str, text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:60]
    return f"SPDXRef-{kind}-{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _purl_ref(purl: str) -> dict[str, str]:
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}


def golang_purl(module: str, version: str) -> str:
    return f"pkg:golang/{quote(module, safe='/')}@{quote(version, safe='')}"


def oci_purl(repository: str, digest: str, **qualifiers: str) -> str:
    name = repository.rsplit("/", 1)[-1].lower()
    query = {"repository_url": repository, **qualifiers}
    tail = "&".join(f"{key}={quote(value, safe='/')}" for key, value in sorted(query.items()) if value)
    return f"pkg:oci/{name}@{quote(digest, safe='')}" + (f"?{tail}" if tail else "")


def _package(spdx_id: str, name: str, version: str, purl: str | None, **extra: Any) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": extra.pop("downloadLocation", NOASSERTION),
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    }
    if purl:
        package["externalRefs"] = [_purl_ref(purl)]
    package.update(extra)
    return package


def _owner(path: str, info: buildinfo.BuildInfo) -> buildinfo.Module | None:
    """The module a main package belongs to: the longest module path that prefixes it."""
    modules = [m for m in (info.main, *info.deps) if m is not None]
    owners = [m for m in modules if path == m.path or path.startswith(m.path + "/")]
    return max(owners, key=lambda m: len(m.path)) if owners else None


def document(
    facts: BuildFacts, repository: str, digest: str, platform: str, files: Iterable[File]
) -> dict[str, Any]:
    """The SPDX 2.3 document of the platform image ``repository@digest``."""
    os_, _, arch = platform.partition("/")
    image_id = "SPDXRef-Image"
    source_id = _id("Source", facts.module)
    remote = urlsplit(facts.source_url).scheme in ("http", "https", "ssh", "git")
    source_location = f"git+{facts.source_url}@{facts.commit}" if remote else NOASSERTION  # a local path
    packages: dict[str, dict[str, Any]] = {
        image_id: _package(
            image_id,
            repository,
            digest,
            oci_purl(repository, digest, arch=arch.split("/")[0], os=os_),
            primaryPackagePurpose="CONTAINER",
            checksums=[{"algorithm": "SHA256", "checksumValue": digest.removeprefix("sha256:")}],
        ),
        source_id: _package(
            source_id,
            facts.module,
            facts.tag,
            golang_purl(facts.module, facts.tag),
            downloadLocation=source_location,
            primaryPackagePurpose="SOURCE",
            sourceInfo=f"git commit {facts.commit} (tag {facts.tag}) of {facts.source_url}",
        ),
    }
    relationships: list[tuple[str, str, str]] = [("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    busybox = False
    for file in files:
        if file.path.startswith("busybox/"):
            busybox = True
        if file.path == CA_BUNDLE_PATH:
            ca_id = _id("CABundle", file.path)
            packages[ca_id] = _package(
                ca_id,
                "certifi cacert.pem",
                facts.certifi,
                f"pkg:pypi/certifi@{facts.certifi}",
                primaryPackagePurpose="FILE",
                checksums=[{"algorithm": "SHA256", "checksumValue": file.sha256}],
                comment=f"/{file.path}",
            )
            relationships.append((image_id, "CONTAINS", ca_id))
        if file.go is None or file.path.startswith("busybox/"):
            continue
        info = file.go
        owner = _owner(info.path, info)
        version = facts.tag if owner is None or owner == info.main else owner.version
        binary_id = _id("Binary", file.path)
        packages[binary_id] = _package(
            binary_id,
            "/" + file.path,
            version,
            golang_purl(info.path, version),
            primaryPackagePurpose="APPLICATION",
            checksums=[{"algorithm": "SHA256", "checksumValue": file.sha256}],
            comment=f"Go main package {info.path}, built by {info.go_version}",
        )
        relationships += [(image_id, "CONTAINS", binary_id), (binary_id, "GENERATED_FROM", source_id)]
        stdlib_version = info.go_version.removeprefix("go")
        stdlib_id = _id("Go", f"stdlib@{stdlib_version}")
        packages.setdefault(
            stdlib_id,
            _package(stdlib_id, "stdlib", info.go_version, golang_purl("stdlib", stdlib_version)),
        )
        relationships.append((binary_id, "DEPENDS_ON", stdlib_id))
        if info.main is not None:
            relationships.append((binary_id, "DEPENDS_ON", source_id))
        for dep in info.deps:
            dep_id = _id("Go", f"{dep.path}@{dep.version}")
            packages.setdefault(
                dep_id, _package(dep_id, dep.path, dep.version, golang_purl(dep.path, dep.version))
            )
            relationships.append((binary_id, "DEPENDS_ON", dep_id))
    if busybox and facts.busybox:
        busybox_id = _id("Busybox", facts.busybox)
        packages[busybox_id] = _package(
            busybox_id,
            "busybox",
            facts.busybox,
            oci_purl(BUSYBOX_REPOSITORY, facts.busybox, tag="musl"),
            primaryPackagePurpose="APPLICATION",
            comment="busybox:musl as deploy/Dockerfile pins it, under /busybox",
        )
        relationships.append((image_id, "CONTAINS", busybox_id))
    tool = f"Tool: kaniko-pipeline-{facts.project_version}"
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{repository}@{digest} ({platform})",
        "documentNamespace": f"https://kaniko-pipeline.invalid/spdx/{quote(repository, safe='/')}/{digest}",
        "creationInfo": {"created": rfc3339(facts.commit_time), "creators": [tool]},
        "documentDescribes": [image_id],
        "packages": [packages[key] for key in sorted(packages)],
        "relationships": [
            {"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}
            for a, kind, b in sorted(set(relationships))
        ],
    }


def to_bytes(doc: dict[str, Any]) -> bytes:
    """The document as JSON: sorted keys, two-space indent, one final newline (stable bytes)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
