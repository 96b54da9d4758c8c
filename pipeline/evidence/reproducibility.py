"""An exact version tag never moves silently.

``vX.Y.Z`` (and ``vX.Y.Z-debug``, ...) names one image forever: anyone may rebuild the tag and compare.
When a rebuild gives other digests than the ones a version tag already names, that is a
reproducibility failure, not an update: the publish stage stops before it pushes anything, and says
which variant differs, on which platform, and (where the published image can be read) which layer or
config. Only the explicit, documented override (``--replace-version-tags``) replaces the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import ImageError, RegistryError, ReproducibilityError
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.policy.tagplan import TagPlan
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference

OVERRIDE_FLAG = "--replace-version-tags"


@dataclass
class TagDifference:
    """A version tag that names another image than the one just built."""

    variant: str
    tag: str  # REPO:TAG
    published: str
    built: str
    details: list[str] = field(default_factory=list)  # per platform, per layer

    def lines(self) -> list[str]:
        head = f"{self.variant}: {self.tag} is {self.published}, this build is {self.built}"
        return [head, *(f"  {line}" for line in self.details)]


def _children(item: Manifest | Index) -> dict[str, Descriptor]:
    if isinstance(item, Index):
        return {str(d.platform) if d.platform else d.digest: d for d in item.manifests}
    return {}


def _layer_lines(published: Manifest | Index, built: Manifest | Index, platform: str) -> list[str]:
    if not isinstance(published, Manifest) or not isinstance(built, Manifest):
        return [f"{platform}: the manifests are of different kinds"]
    lines = []
    if published.config.digest != built.config.digest:
        lines.append(f"{platform}: config {published.config.digest} -> {built.config.digest}")
    count = max(len(published.layers), len(built.layers))
    for i in range(count):
        old = published.layers[i].digest if i < len(published.layers) else "(none)"
        new = built.layers[i].digest if i < len(built.layers) else "(none)"
        if old != new:
            lines.append(f"{platform}: layer {i + 1} of {count}: {old} -> {new}")
    if published.annotations != built.annotations:
        lines.append(f"{platform}: the manifest annotations differ")
    return lines or [f"{platform}: the manifests differ outside their config and layers"]


def _details(client: Client, repo: Reference, published: str, layout: Layout, desc: Descriptor) -> list[str]:
    """Which platforms differ and, where the published image can be read, which layers."""
    try:
        data, remote = client.get_manifest(repo.with_digest(published))
        theirs = parse(data, remote.media_type)
    except (RegistryError, ImageError) as exc:
        return [f"(the published image could not be read to compare layers: {exc.message})"]
    ours = layout.read_manifest(desc)
    theirs_children, ours_children = _children(theirs), _children(ours)
    if not ours_children or not theirs_children:
        return _layer_lines(theirs, ours, "image")
    lines: list[str] = []
    for platform in sorted(set(theirs_children) | set(ours_children)):
        old, new = theirs_children.get(platform), ours_children.get(platform)
        if old is None or new is None:
            lines.append(f"{platform}: only in the {'build' if old is None else 'published image'}")
        elif old.digest != new.digest:
            lines.append(f"{platform}: manifest {old.digest} -> {new.digest}")
            try:
                data, child = client.get_manifest(repo.with_digest(old.digest))
                lines += _layer_lines(parse(data, child.media_type), layout.read_manifest(new), platform)
            except (RegistryError, ImageError) as exc:
                lines.append(f"{platform}: (its published manifest could not be read: {exc.message})")
    if theirs.annotations != ours.annotations:
        lines.append("index: the annotations differ")
    return lines


def compare(
    client: Client, layout: Layout, plans: Mapping[str, tuple[TagPlan, Descriptor]]
) -> list[TagDifference]:
    """Every version tag of ``plans`` that already names an image other than the one built."""
    found: list[TagDifference] = []
    for variant, (plan, desc) in plans.items():
        repo = Reference.parse(plan.repository)
        for tag in plan.version_tags:
            current = client.head_manifest(repo.with_tag(tag), push=True)
            if current is None or current.digest == desc.digest:
                continue
            details = _details(client, repo, current.digest, layout, desc)
            found.append(
                TagDifference(variant, f"{repo.repo_str}:{tag}", current.digest, desc.digest, details)
            )
    return found


def refuse(differences: list[TagDifference]) -> ReproducibilityError:
    lines = [line for diff in differences for line in diff.lines()]
    return ReproducibilityError(
        "reproducibility failure: this build of an already published version gives other digests, so "
        "nothing was pushed and no tag moved:\n" + "\n".join(lines),
        hint="rebuild with the pinned toolchain and inputs (see the build's Go toolchain line); replace the "
        f"published images only if that is intended, with {OVERRIDE_FLAG} (README: 'Exact version tags')",
    )
