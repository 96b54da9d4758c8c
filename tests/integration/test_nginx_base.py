"""The Debian-made nginx base: cached, deterministic layer, pushable to a registry that kaniko uses as its
docker.io mirror, and runnable from there (the smoke checks pass on the base itself)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import nginxbase, nginxlayer
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.stages.smoke import check_image
from tests.support.images import shared_test_cache

pytestmark = pytest.mark.slow


def test_base_is_built_once_and_reused(nginx_base: nginxbase.BaseImage) -> None:
    again = nginxbase.ensure(shared_test_cache())
    assert again == nginx_base
    # only the finished layout is left in the recipe's directory: no half-built attempts
    assert sorted(p.name for p in nginx_base.layout.parent.iterdir()) == ["layout"]


def test_base_config_and_layer_are_unprivileged_nginx(nginx_base: nginxbase.BaseImage) -> None:
    config = nginxbase.config_json(nginx_base)
    assert config["config"]["User"] == "101"  # type: ignore[index]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}  # type: ignore[index]
    layout = Layout.open(nginx_base.layout)
    manifest = layout.read_manifest(nginx_base.descriptor)
    assert isinstance(manifest, Manifest)
    with tarfile.open(layout.blob_path(manifest.layers[0].digest), "r:gz") as tar:
        names = set()
        for member in tar:
            names.add(member.name)
            assert member.mtime == nginxlayer.EPOCH
            assert not member.isdev()
        conf = tar.extractfile("etc/nginx/nginx.conf")
        assert conf is not None
        text = conf.read().decode()
    assert "pid /tmp/nginx.pid" in text and "\nuser " not in text
    assert "usr/share/nginx/html/index.html" in names
    assert "usr/sbin/nginx" in names


def test_published_base_pulls_by_digest_and_passes_smoke(
    nginx_base: nginxbase.BaseImage, registry: LocalRegistry, podman: Podman, tmp_path: Path
) -> None:
    with Client(credentials=Credentials.anonymous()) as client:
        pushed = nginxbase.publish(nginx_base, client, registry.host)
        ref = Reference.parse(nginxbase.mirror_reference(registry.host))
        desc = client.head_manifest(ref)
    assert desc is not None and desc.digest == pushed.digest == nginx_base.descriptor.digest
    assert nginxbase.docker_hub_name(pushed.digest) == f"docker.io/library/nginx-debian@{pushed.digest}"
    image = f"{registry.host}/library/nginx-debian@{pushed.digest}"
    try:
        result = check_image(podman, image)
        assert result.ok, json.dumps(result.to_dict(), indent=1)
    finally:
        podman.rmi(image)
