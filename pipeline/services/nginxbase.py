"""The offline nginx base image, made from Debian packages without root, and cached.

Offline there is no Docker Hub to pull the Dockerfile's pinned base from, so the pipeline makes an
equivalent base itself: ``mmdebstrap --mode=unshare --variant=minbase --include=nginx-light bookworm``
(Debian's default mirror; user namespaces, so an ordinary user can do it, and root the same way), then
rewrites that tar into one layer configured the way nginxinc/nginx-unprivileged is (pipeline/services/
nginxlayer.py), so it runs under ``--cap-drop=ALL`` as non-root.

The layer is reproducible: mmdebstrap runs with a fixed SOURCE_DATE_EPOCH, and the layer has sorted
entries, fixed mtimes and numeric owners, gzip'd without a timestamp; the same package versions give
the same digest, as root or not. The recipe (suite, variant, packages and their versions) is recorded
in the layer descriptor's annotations. The result is an OCI image layout in the cache, keyed by the
recipe, built once and reused. It can be pushed to a registry as ``library/nginx-debian`` so that
kaniko, with ``--registry-mirror``, pulls it as ``docker.io/library/nginx-debian``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import ImageError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest, canonical_json
from pipeline.progress import Progress, Silent
from pipeline.services.mmdebstrap import Recipe, bootstrap
from pipeline.services.nginxlayer import DEFAULT_SERVER, EPOCH, NGINX_CONF, PACKAGES, USER_ID, write_layer

if TYPE_CHECKING:
    from pipeline.registry.client import Client, PushResult

SUITE = "bookworm"
RECIPE = Recipe(SUITE, PACKAGES)
ANNOTATION = "dev.kaniko-pipeline.base."  # + suite, variant, packages, versions, tool (layer annotations)
REF_NAME = "nginx-base"
MIRROR_REPOSITORY = "library/nginx-debian"  # kaniko pulls it as docker.io/library/nginx-debian


@dataclass(frozen=True)
class BaseImage:
    layout: Path
    descriptor: Descriptor
    ref_name: str = REF_NAME

    @property
    def oci_reference(self) -> str:
        """The image in podman/skopeo syntax: ``oci:DIR:REF``."""
        return f"oci:{self.layout}:{self.ref_name}"

    @property
    def store(self) -> Path:
        """The cache's ``nginx-base`` folder that holds this base (one folder per recipe, see ensure)."""
        return self.layout.parent.parent


def recipe_key() -> str:
    """A short hash of everything that shapes the image, so a changed recipe builds a new one."""
    recipe = {
        "suite": SUITE,
        "packages": PACKAGES,
        "nginx.conf": NGINX_CONF,
        "default.conf": DEFAULT_SERVER,
        "user": USER_ID,
        "arch": _architecture(),
        "variant": RECIPE.variant,
        "tool": "mmdebstrap --mode=unshare",
        "format": 2,
    }
    return hashlib.sha256(canonical_json(recipe)).hexdigest()[:16]


def ensure(cache_dir: Path, *, progress: Progress | None = None) -> BaseImage:
    """The cached base image, built first if it is not there yet."""
    progress = progress or Silent()
    root = Path(cache_dir) / "nginx-base" / recipe_key()
    layout_dir = root / "layout"
    cached = _cached(layout_dir)
    if cached is not None:
        progress.step(f"nginx base image: cached at {layout_dir}")
        return cached
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        rootfs_tar = work / "rootfs.tar"
        bootstrap(RECIPE, rootfs_tar, epoch=EPOCH, progress=progress)
        progress.step("nginx base image: writing the layer and the OCI layout")
        staging = work / "layout"
        write_layout(rootfs_tar, staging)
        if layout_dir.exists():
            shutil.rmtree(layout_dir)
        os.replace(staging, layout_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Described by the same reader as a cache hit, so a first run and a cached run return equal values.
    built = _cached(layout_dir)
    if built is None:
        raise ImageError(f"the nginx base written to {layout_dir} has no {REF_NAME!r} ref in its index.json")
    progress.step(f"nginx base image: {built.descriptor.digest} at {layout_dir}")
    return built


def _cached(layout_dir: Path) -> BaseImage | None:
    """The base image in ``layout_dir``, described from its index.json, or None if it is not there."""
    if not (layout_dir / "index.json").is_file():
        return None
    desc = Layout.open(layout_dir).ref(REF_NAME)
    return None if desc is None else BaseImage(layout_dir, desc)


def write_layout(rootfs_tar: Path, layout_dir: Path) -> Descriptor:
    """One gzip layer of the configured ``rootfs_tar``, an image config, a manifest, in a new OCI layout."""
    layout = Layout.create(layout_dir)
    with tempfile.TemporaryDirectory(dir=layout_dir) as tmp:
        layer_path = Path(tmp) / "layer.tar.gz"
        diff_id, versions = write_layer(rootfs_tar, layer_path)
        layer_digest, layer_size = layout.add_blob_file(layer_path)
    config = image_config(diff_id)
    config_bytes = canonical_json(config)
    config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config_bytes), len(config_bytes))
    layer_desc = Descriptor(
        mediatype.OCI_LAYER_GZIP, layer_digest, layer_size, annotations=recipe_annotations(versions)
    )
    manifest = Manifest(
        config=config_desc,
        layers=[layer_desc],
        annotations={"org.opencontainers.image.title": f"nginx-debian ({SUITE}, {' '.join(PACKAGES)})"},
    )
    desc = layout.write_manifest(manifest)
    desc = Descriptor(desc.media_type, desc.digest, desc.size, platform=Platform("linux", _architecture()))
    return layout.set_ref(REF_NAME, desc)


def recipe_annotations(versions: dict[str, str]) -> dict[str, str]:
    """The recipe, as the layer descriptor's annotations: suite, variant, packages, their versions, tool."""
    return {
        ANNOTATION + "suite": RECIPE.suite,
        ANNOTATION + "variant": RECIPE.variant,
        ANNOTATION + "packages": ",".join(RECIPE.packages),
        ANNOTATION + "versions": ",".join(f"{name}={versions[name]}" for name in sorted(versions)),
        ANNOTATION + "tool": "mmdebstrap --mode=unshare",
    }


def recipe(base: BaseImage) -> dict[str, str]:
    """The recorded recipe of a base (its layer's annotations, without the prefix)."""
    layout = Layout.open(base.layout)
    manifest = layout.read_manifest(base.descriptor)
    assert isinstance(manifest, Manifest)
    notes = manifest.layers[0].annotations
    return {key[len(ANNOTATION) :]: value for key, value in notes.items() if key.startswith(ANNOTATION)}


def image_config(diff_id: str) -> dict[str, object]:
    return {
        "architecture": _architecture(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": str(USER_ID),
            "ExposedPorts": {"8080/tcp": {}},
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "StopSignal": "SIGQUIT",
            "Labels": {"org.opencontainers.image.description": "nginx-light from Debian " + SUITE},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kaniko-pipeline nginxbase"}],
    }


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def config_json(base: BaseImage) -> dict[str, object]:
    layout = Layout.open(base.layout)
    manifest = layout.read_manifest(base.descriptor)
    assert isinstance(manifest, Manifest)
    data: dict[str, object] = json.loads(layout.read_blob(manifest.config.digest))
    return data


def mirror_reference(registry_host: str) -> str:
    """Where the base goes in a mirror registry: ``HOST/library/nginx-debian:<recipe key>``."""
    return f"{registry_host}/{MIRROR_REPOSITORY}:{recipe_key()}"


def docker_hub_name(digest: str) -> str:
    """The name kaniko uses for the base through ``--registry-mirror``: docker.io/library/nginx-debian@DIGEST."""
    return f"docker.io/{MIRROR_REPOSITORY}@{digest}"


def publish(base: BaseImage, client: Client, registry_host: str) -> PushResult:
    """Push the base to ``registry_host`` (e.g. the local registry kaniko uses as its docker.io mirror)."""
    from pipeline.registry.reference import Reference

    ref = Reference.parse(mirror_reference(registry_host))
    assert ref.tag is not None
    return client.push_layout(Layout.open(base.layout), base.descriptor, ref, tags=[ref.tag])


def run(settings: Settings, *, push_to: str = "", progress: Progress | None = None) -> dict[str, Any]:
    """`invoke nginx-base`: make the base (cached) and, with ``push_to``, push it to that registry."""
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.registry.reference import host_of_prefix

    progress = progress or Silent()
    if push_to:
        _check_push_to(push_to)  # before the base is made (a minute or more)
    base = ensure(settings.cache_dir, progress=progress)
    out: dict[str, Any] = {"layout": str(base.layout), "digest": base.descriptor.digest}
    if push_to:
        with Client(
            credentials=Credentials.from_environment(settings.env),
            insecure=settings.insecure_for(host_of_prefix(push_to)),
            ca_file=settings.ca_bundle,
            progress=progress,
        ) as client:
            pushed = publish(base, client, push_to)
        out["pushed"] = f"{push_to}/{MIRROR_REPOSITORY}@{pushed.digest}"
        out["base_image"] = docker_hub_name(pushed.digest)
    return out


def _check_push_to(push_to: str) -> None:
    from pipeline.errors import ReferenceError_, UsageError
    from pipeline.registry.reference import host_of_prefix

    try:
        host_of_prefix(push_to)
    except ReferenceError_ as exc:
        raise UsageError(
            f"--push-to {push_to!r} is not a registry (host[:port]): {exc.message}",
            hint="e.g. --push-to 127.0.0.1:5000",
        ) from None
