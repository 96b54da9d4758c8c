"""One CI job per platform, joined by digest: the platform side (`invoke publish --manifests-only --record
FILE`) and the join (`invoke release --join FILE...`).

A platform job builds its platforms (`invoke build --platforms P`) and pushes each variant's platform
images by digest: blobs and image manifests, no index and no tag. Its record says what it pushed, where,
and from what (the images' annotations: version, commit, source; the build's inputs and Go toolchain).

The join reads the records, refuses any that disagree (another commit, toolchain, CA bundle or busybox,
a platform built twice or missing, a record not of this release), pulls each platform image back from
the registry (every byte checked against its digest) into a new OCI layout and writes each variant's
index exactly as a one-machine build writes it: the platform images in the release's ``--platforms``
order, the same annotations. The builds being reproducible, the join's indexes are byte for byte the
one-machine build's; the release then goes on from that layout as after its own build stage.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ImageError, UsageError
from pipeline.image.assemble import Image
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, descriptor_of, parse
from pipeline.policy import tagplan
from pipeline.progress import Progress, Silent
from pipeline.record import atomic_write_text
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference

KIND = "kaniko-pipeline platform images"
FORMAT = 1
REVISION = "org.opencontainers.image.revision"
# the same in every record (the toolchain without its path: each job has its own checkout directory)
AGREE = ("version", "commit", "prefix", "annotations", "inputs", "toolchain", "variants")


@dataclass(frozen=True)
class PlatformRecord:
    """What one platform job pushed: per variant and platform the image manifest's descriptor."""

    prefix: str
    version: str
    commit: str
    platforms: tuple[str, ...]
    manifests: Mapping[str, Mapping[str, Descriptor]]  # variant -> platform -> image manifest
    annotations: Mapping[str, Mapping[str, str]]  # variant -> its index's annotations
    inputs: Mapping[str, Any]  # the build's inputs (CA bundle, busybox, Go) and toolchain
    go: Mapping[str, Any]
    window: tuple[float, float]  # when the build ran

    @property
    def variants(self) -> list[str]:
        return list(self.manifests)

    @property
    def toolchain(self) -> dict[str, Any]:
        """The Go toolchain that built it: version, origin, pinned (not where the job had it)."""
        return {key: value for key, value in self.go.items() if key != "path"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format": FORMAT,
            "prefix": self.prefix,
            "version": self.version,
            "commit": self.commit,
            "platforms": list(self.platforms),
            "manifests": {
                v: {p: d.to_dict() for p, d in by_platform.items()}
                for v, by_platform in self.manifests.items()
            },
            "annotations": {v: dict(a) for v, a in self.annotations.items()},
            "inputs": dict(self.inputs),
            "go": dict(self.go),
            "window": list(self.window),
        }

    @classmethod
    def read(cls, path: Path) -> PlatformRecord:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("kind") != KIND or data.get("format") != FORMAT:
                raise ValueError(f"not a record of {KIND} (format {FORMAT})")
            manifests = {
                str(v): {str(p): Descriptor.from_dict(d) for p, d in by_platform.items()}
                for v, by_platform in data["manifests"].items()
            }
            start, end = (float(t) for t in data["window"])
            return cls(
                prefix=str(data["prefix"]),
                version=str(data["version"]),
                commit=str(data["commit"]),
                platforms=tuple(str(p) for p in data["platforms"]),
                manifests=manifests,
                annotations={
                    str(v): {str(k): str(x) for k, x in a.items()} for v, a in data["annotations"].items()
                },
                inputs=dict(data["inputs"]),
                go=dict(data["go"]),
                window=(start, end),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"{path} is not a platform record: {exc}",
                hint="pass the files `invoke publish --manifests-only --record FILE` wrote",
            ) from None

    def write(self, path: Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def push_platform_images(
    client: Client,
    layout: Layout,
    images: Mapping[str, Descriptor],
    prefix: str,
    build: Mapping[str, Any],
    window: tuple[float, float],
    progress: Progress | None = None,
) -> PlatformRecord:
    """Push every platform image of each variant's index by digest (no index, no tag); return the record."""
    progress = progress or Silent()
    manifests: dict[str, dict[str, Descriptor]] = {}
    annotations: dict[str, dict[str, str]] = {}
    recorded = build.get("images") or {}
    version = str(build.get("version") or "")
    for variant, desc in images.items():
        index = layout.read_manifest(desc)
        if not isinstance(index, Index):
            raise ImageError(f"the {variant} image in {layout.root} is not an index of platform images")
        names = dict(recorded.get(variant, {}).get("platforms", {}))  # platform as built -> digest
        by_digest = {digest: platform for platform, digest in names.items()}
        repository = Reference.parse(tagplan.plan_variant(version, variant, prefix).repository)
        manifests[variant] = {}
        for item in index.manifests:
            platform = by_digest.get(item.digest) or str(item.platform)
            progress.step(f"pushing {variant} for {platform} to {repository.repo_str} by digest")
            pushed = client.push_layout(layout, item, repository, tags=[])
            if pushed.digest != item.digest:
                raise ImageError(
                    f"pushed {variant} for {platform} as {pushed.digest}, expected {item.digest}"
                )
            manifests[variant][platform] = item
        annotations[variant] = dict(index.annotations)
    commit = next(iter(annotations.values()), {}).get(REVISION, "")
    platforms = tuple(dict.fromkeys(p for by_platform in manifests.values() for p in by_platform))
    inputs, go = dict(build.get("inputs") or {}), dict(build.get("go") or {})
    return PlatformRecord(prefix, version, commit, platforms, manifests, annotations, inputs, go, window)


@dataclass(frozen=True)
class Joined:
    """The join's value: the layout it wrote, each variant's image, and the build facts of the records."""

    layout: Layout
    images: dict[str, Image]
    inputs: dict[str, Any]
    go: dict[str, Any]
    window: tuple[float, float]


def check(
    records: Sequence[tuple[Path, PlatformRecord]], *, version: str, commit: str, platforms: Sequence[str]
) -> None:
    """Every record is of this release, they agree, and together they hold each platform exactly once."""
    if not records:
        raise UsageError("--join needs the platform records", hint="pass each platform job's --record FILE")
    first_path, first = records[0]
    for path, found in records:
        if (found.version, found.commit) != (version, commit):
            raise UsageError(
                f"{path} is of {found.version} at {found.commit[:12] or 'no commit'}, "
                f"but this release is {version} at {commit[:12]}",
                hint="join only the records of the platform jobs of this release",
            )
        for field in AGREE:
            if getattr(found, field) != getattr(first, field):
                raise UsageError(
                    f"{path} and {first_path} disagree on {field}",
                    hint="every platform job must build the same checkout with the same inputs",
                )
    seen: dict[str, Path] = {}
    for path, found in records:
        for platform in found.platforms:
            if platform in seen:
                raise UsageError(
                    f"{platform} is in both {seen[platform]} and {path}", hint="one job per platform"
                )
            seen[platform] = path
    if sorted(seen) != sorted(platforms):
        missing, extra = sorted(set(platforms) - set(seen)), sorted(set(seen) - set(platforms))
        raise UsageError(
            "the records do not hold the release's platforms"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not asked for: {', '.join(extra)}" if extra else ""),
            hint="join one record per platform of --platforms",
        )


def join(
    client: Client,
    records: Sequence[PlatformRecord],
    platforms: Sequence[str],
    out: Path,
    progress: Progress | None = None,
) -> Joined:
    """Pull every platform image of the records into a new layout at ``out`` and write each variant's
    index as a one-machine build does (checked records: :func:`check`)."""
    progress = progress or Silent()
    started = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    layout = Layout.create(out)
    first = records[0]
    images: dict[str, Image] = {}
    for variant in first.variants:
        found = {p: d for record in records for p, d in record.manifests[variant].items()}
        repository = Reference.parse(tagplan.plan_variant(first.version, variant, first.prefix).repository)
        for platform in platforms:
            _pull_image(client, repository, found[platform], layout)
        index = Index(manifests=[found[p] for p in platforms], annotations=dict(first.annotations[variant]))
        data = index.to_bytes()
        layout.write_blob(data)
        desc = layout.set_ref(variant, descriptor_of(index, data))
        images[variant] = Image(variant, desc, {p: found[p] for p in platforms})
    progress.info(f"joined {len(records)} platform record(s) in {time.monotonic() - started:.1f} s")
    window = (min(r.window[0] for r in records), max(r.window[1] for r in records))
    return Joined(layout, images, dict(first.inputs), dict(first.go), window)


def _pull_image(client: Client, repository: Reference, desc: Descriptor, layout: Layout) -> None:
    data, _ = client.get_manifest(repository.with_digest(desc.digest))  # checked against the digest
    manifest = parse(data, desc.media_type)
    if not isinstance(manifest, Manifest) or len(data) != desc.size:
        raise ImageError(f"{repository.repo_str}@{desc.digest} is not the platform image the record names")
    layout.write_blob(data)
    for blob in [manifest.config, *manifest.layers]:
        if not layout.blob_path(blob.digest).is_file():
            client.download_blob(repository, blob.digest, layout.blob_path(blob.digest))
