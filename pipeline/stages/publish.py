"""The publish stage: push the built images with their tag plan.

Input: what the last ``invoke build`` recorded (``{"layout": DIR, "images": {variant: {"digest",
"platforms"}}}``) or an OCI image layout whose index.json names each variant's index with the
``org.opencontainers.image.ref.name`` annotation. Each variant goes to ``PREFIX/kaniko-executor`` (executor,
debug, slim) or ``PREFIX/kaniko-warmer``: blobs, platform manifests by digest, the index by digest, its
version tags; then, unless told not to, the rolling tags that may move (never backwards, see
:mod:`pipeline.policy.tagplan`).

With no prefix and no credentials configured, the images go to the embedded local registry, which is
started if it is not running, and the stage says so on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record
from pipeline.config import VARIANTS
from pipeline.errors import ImageError, ReferenceError_, RegistryError, UsageError
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import REF_NAME, Layout
from pipeline.policy import tagplan
from pipeline.progress import Progress, Silent

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.registry.client import Client
    from pipeline.registry.reference import Reference


@dataclass
class PublishedImage:
    variant: str
    repository: str
    digest: str
    tags: list[str]
    version: str
    bytes_uploaded: int = 0
    kept: dict[str, str] = field(default_factory=dict)  # rolling tag -> the higher version it holds
    pending_rolling: list[str] = field(default_factory=list)  # rolling tags not moved (yet)

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "digest": self.digest, "tags": list(self.tags)}


# -- input -------------------------------------------------------------------------------------


def images_from_layout(layout: Layout) -> dict[str, Descriptor]:
    """Each variant's top descriptor, by its ref name in index.json."""
    refs = layout.refs()
    images = {name: desc for name, desc in refs.items() if name in VARIANTS}
    if not images:
        names = ", ".join(sorted(refs)) or "none"
        raise ImageError(
            f"the layout {layout.root} names no image variant (its ref names: {names})",
            hint="index.json must name each variant's index with the annotation "
            f"{REF_NAME} = executor, debug, slim or warmer (as `invoke build` writes it)",
        )
    return dict(sorted(images.items(), key=lambda item: VARIANTS.index(item[0])))


def recorded_images(record_file: Path, *, needed_by: str | None = None) -> dict[str, str]:
    """The one reader of the publish record: variant -> ``REPOSITORY@DIGEST`` of what the last
    `invoke publish` (or release) published. With ``needed_by``, a missing record is a RecordError
    that names the task needing it; without, an empty mapping."""
    if needed_by:
        data: Any = record.stage(record_file, "publish", needed_by=needed_by)
    else:
        data = record.read(record_file).get("publish") or {}
    images = data.get("images") if isinstance(data, Mapping) else None
    found: dict[str, str] = {}
    if isinstance(images, Mapping):
        for variant, entry in images.items():
            if isinstance(entry, Mapping) and entry.get("repository") and entry.get("digest"):
                found[str(variant)] = f"{entry['repository']}@{entry['digest']}"
    return found


def image_version(layout: Layout, desc: Descriptor) -> str | None:
    """The version the image says it is: its ``org.opencontainers.image.version`` annotation."""
    found = desc.annotations.get(tagplan.VERSION_ANNOTATION)
    if found:
        return found
    item = layout.read_manifest(desc)
    annotations = getattr(item, "annotations", None) or {}
    return annotations.get(tagplan.VERSION_ANNOTATION)


# -- rolling tags --------------------------------------------------------------------------------


def held_version(client: Client, ref: Reference) -> str | None:
    """The version the image ``ref`` names holds now (None: no such tag, or it says no version)."""
    if client.head_manifest(ref) is None:
        return None
    data, _ = client.get_manifest(ref)
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    version = annotations.get(tagplan.VERSION_ANNOTATION) if isinstance(annotations, dict) else None
    return str(version) if version else None


def move_rolling(
    client: Client,
    layout: Layout | None,
    desc: Descriptor,
    plan: tagplan.TagPlan,
    *,
    held: Mapping[str, str | None] | None = None,
    progress: Progress | None = None,
) -> tagplan.RollingDecision:
    """Point the plan's rolling tags at ``desc`` where that does not move them backwards (its manifest
    from ``layout``, or with none from the registry, where it is published by digest). ``held``: the
    version each rolling tag holds, as the caller verified it (the release: only what its identity
    signed counts); else each tag's annotation as the registry gives it (``invoke publish``)."""
    from pipeline.registry.reference import Reference

    progress = progress or Silent()
    repo = Reference.parse(plan.repository)
    current = (
        held if held is not None else {t: held_version(client, repo.with_tag(t)) for t in plan.rolling_tags}
    )
    decision = tagplan.decide_rolling(plan, current)
    if layout is not None:
        data = layout.read_blob(desc.digest)
    else:
        data, _ = client.get_manifest(repo.with_digest(desc.digest))
    for tag in decision.move:
        tagged = repo.with_tag(tag)
        now = client.head_manifest(tagged)
        if now is None or now.digest != desc.digest:
            client.put_manifest(tagged, data, desc.media_type)
    for tag, version in decision.keep.items():
        progress.info(f"{plan.repository}:{tag} stays at {version} (higher than {plan.version})")
    return decision


# -- the stage ---------------------------------------------------------------------------------


def publish_images(
    client: Client,
    layout: Layout,
    images: Mapping[str, Descriptor],
    prefix: str,
    *,
    version: str | None = None,
    rolling: bool = True,
    replace_version_tags: bool = False,
    progress: Progress | None = None,
) -> dict[str, PublishedImage]:
    """Push each variant with its version tags, then (``rolling``) move its rolling tags.

    A version tag that already names another image stops the publish before anything is pushed
    (:mod:`pipeline.evidence.reproducibility`), unless ``replace_version_tags`` says to replace it.
    """
    from pipeline.evidence import reproducibility
    from pipeline.registry.reference import Reference

    progress = progress or Silent()
    plans: dict[str, tuple[tagplan.TagPlan, Descriptor]] = {}
    for variant, desc in images.items():
        found = version or image_version(layout, desc)
        if not found:
            raise ImageError(
                f"the {variant} image in {layout.root} says no version "
                f"({tagplan.VERSION_ANNOTATION} annotation) and none was given",
                hint="pass --version vX.Y.Z",
            )
        plans[variant] = (tagplan.plan_variant(found, variant, prefix), desc)
    differences = reproducibility.compare(client, layout, plans)
    if differences and not replace_version_tags:
        raise reproducibility.refuse(differences)
    for difference in differences:
        progress.warn(f"{reproducibility.OVERRIDE_FLAG}: replacing " + "\n".join(difference.lines()))
    published: dict[str, PublishedImage] = {}
    # Version tags first, for every variant; rolling tags after all of them are in place.
    for variant, (plan, desc) in plans.items():
        progress.step(f"publishing {variant} to {plan.repository} ({', '.join(plan.version_tags)})")
        ref = Reference.parse(plan.repository)
        result = client.push_layout(layout, desc, ref, tags=plan.version_tags)
        if result.digest != desc.digest:
            raise RegistryError(
                f"pushed {variant} as {result.digest}, expected {desc.digest}",
                hint="the registry changed the manifest; it cannot be published there as built",
            )
        published[variant] = PublishedImage(
            variant,
            ref.repo_str,
            desc.digest,
            list(plan.version_tags),
            plan.version,
            result.bytes_uploaded,
            pending_rolling=list(plan.rolling_tags),
        )
    if rolling:
        for variant, (plan, desc) in plans.items():
            decision = move_rolling(client, layout, desc, plan, progress=progress)
            image = published[variant]
            image.tags.extend(decision.move)
            image.kept = dict(decision.keep)
            image.pending_rolling = []
    return published


def check_prefixes(prefixes: Iterable[str]) -> None:
    """Refuse a ``--prefix`` that names no repository prefix (before anything is read or sent)."""
    from pipeline.registry.reference import host_of_prefix

    for prefix in prefixes:
        try:
            host_of_prefix(prefix)
        except ReferenceError_ as exc:
            raise UsageError(
                f"--prefix {prefix!r} is not a repository prefix ({exc.message})",
                hint="e.g. --prefix docker.io/NAME or --prefix 127.0.0.1:5000/team",
            ) from None


def destination_prefix(
    settings: Settings,
    has_docker_hub_credentials: bool,
    progress: Progress,
    *,
    warn: bool = True,
) -> tuple[str, bool]:
    """The prefix to publish under, and whether it is the embedded local registry (started if need be).

    With ``warn`` (the default) it says so when the embedded registry is used; a caller that may
    end up publishing nothing (a release that is up to date) passes False and calls
    :func:`embedded_warning` once it does publish.
    """
    from pipeline.services import distribution

    dest = tagplan.resolve_destination(
        settings.prefix,
        settings.env,
        has_docker_hub_credentials=has_docker_hub_credentials,
    )
    if dest.prefix is not None:
        return dest.prefix, False
    embedded = distribution.up(settings.cache_dir, progress=progress)
    if warn:
        progress.warn(embedded_warning(dest.reason, embedded.host))
    return embedded.host, True


def embedded_warning(reason: str, host: str) -> str:
    return (
        f"{reason}: publishing to the embedded local registry at {host} "
        "(stop it with `invoke registry.down`; pass --prefix or set DOCKER_HUB_USERNAME and "
        "DOCKER_HUB_KANIKO_PAT to publish elsewhere)"
    )


def run(
    settings: Settings,
    *,
    layout_dir: Path | None = None,
    version: str | None = None,
    rolling: bool = True,
    variants: Iterable[str] | None = None,
    replace_version_tags: bool = False,
    platform_record: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """`invoke publish`: read the input, choose the destination, push, record. Returns the JSON result.
    With ``platform_record`` (`--manifests-only --record FILE`): only the platform images, by digest, and
    the platform record for the join (pipeline/stages/fanout.py)."""
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    progress = progress or Silent()
    check_prefixes(settings.prefixes)
    if platform_record is not None:
        if layout_dir is not None or version:
            raise UsageError(
                "--manifests-only publishes what the last `invoke build` made (its record says how it was "
                "built): it takes no --layout or --version",
                hint="run `invoke build --platforms P`, then `invoke publish --manifests-only --record FILE`",
            )
        if platform_record.is_dir() or not platform_record.parent.is_dir():
            raise UsageError(
                f"--record {platform_record} is not a file in an existing directory", hint="name a file"
            )
    if version:
        tagplan.parse_version(version)
    built: Mapping[str, Any] = {}  # the build record, when the input is the last `invoke build`
    if layout_dir is not None:
        layout = Layout.open(layout_dir)
        images = images_from_layout(layout)
    else:
        from pipeline.stages.build import layout_images

        built = record.stage(settings.record_file, "build", needed_by="publish")
        layout, images = layout_images(built)
    if variants is not None:
        wanted = set(variants)
        images = {k: v for k, v in images.items() if k in wanted}
        if not images:
            raise ImageError(f"none of the variants {', '.join(sorted(wanted))} is in the input")
    credentials = Credentials.from_environment(settings.env)
    has_hub = credentials.lookup("docker.io") is not None
    chosen, embedded = destination_prefix(settings, has_hub, progress)
    from pipeline.registry.reference import host_of_prefix

    with Client(
        credentials=credentials,
        insecure=settings.insecure_for(host_of_prefix(chosen)),
        ca_file=settings.ca_bundle,
        progress=progress,
    ) as client:
        if platform_record is not None:
            from pipeline.stages import fanout

            start, end = built.get("window") or (0.0, 0.0)
            made = fanout.push_platform_images(
                client, layout, images, chosen, built, (float(start), float(end)), progress
            )
            made.write(platform_record)
            return {"record": str(platform_record), **made.to_dict()}
        published = publish_images(
            client,
            layout,
            images,
            chosen,
            version=version,
            rolling=rolling,
            replace_version_tags=replace_version_tags,
            progress=progress,
        )
    record_published(settings.record_file, published, chosen, embedded)
    return {"images": {variant: image.to_dict() for variant, image in published.items()}}


def record_published(
    record_file: Path, published: Mapping[str, PublishedImage], prefix: str, embedded: bool
) -> None:
    """The publish record (`invoke publish` and the release write it; :func:`recorded_images` reads it)."""
    record.save(
        record_file,
        "publish",
        {
            "images": {variant: image.to_dict() for variant, image in published.items()},
            "prefix": prefix,
            "embedded": embedded,
            "pending_rolling": {v: i.pending_rolling for v, i in published.items() if i.pending_rolling},
            "bytes_uploaded": {v: i.bytes_uploaded for v, i in published.items()},
        },
    )
