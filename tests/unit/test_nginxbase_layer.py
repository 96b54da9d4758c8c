"""The nginx base's layer, rewritten from a bootstrap tar shaped like mmdebstrap's (./ names, device
nodes, the stock nginx site): deterministic, configured to run unprivileged, the recipe recorded."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path

import pytest

from pipeline.errors import ImageError
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest
from pipeline.services import nginxbase, nginxlayer
from tests.support.debian import bootstrap_tar


def _layer(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isreg() else None
            out[member.name] = (member, handle.read() if handle else b"")
    return out


def test_layer_is_deterministic_sorted_and_configured_for_an_unprivileged_nginx(tmp_path: Path) -> None:
    first = bootstrap_tar(tmp_path / "a.tar")
    second = bootstrap_tar(tmp_path / "b.tar", mtime=1_800_000_000)  # another day, the same packages
    diff_a, versions = nginxlayer.write_layer(first, tmp_path / "a.tar.gz")
    diff_b, _ = nginxlayer.write_layer(second, tmp_path / "b.tar.gz")
    assert diff_a == diff_b
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    raw = gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert diff_a == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert versions == {"nginx-light": "1.22.1-9+deb12u2"}

    layer = _layer(tmp_path / "a.tar.gz")
    names = list(layer)
    assert names == sorted(names)
    assert "dev" in names and "dev/null" not in names  # no device nodes
    assert "tmp" in names and "tmp/leftover" not in names and "var/cache/apt/pkgcache.bin" not in names
    assert not any(name.startswith("./") for name in names)
    assert "etc/nginx/sites-enabled/default" not in names  # Debian's site listens on 80
    assert layer["etc/nginx/nginx.conf"][1].decode() == nginxlayer.NGINX_CONF
    assert b"listen 8080;" in layer["etc/nginx/conf.d/default.conf"][1]
    assert (
        layer["etc/passwd"][1]
        .decode()
        .endswith("nginx:x:101:101:nginx user:/nonexistent:/usr/sbin/nologin\n")
    )
    assert layer["etc/group"][1].decode() == "root:x:0:\nnginx:x:101:\n"
    for name, (info, _) in layer.items():
        assert info.mtime == nginxlayer.EPOCH and info.uname == "" and info.gname == ""
        owned = name.startswith("usr/share/nginx/html")
        assert (info.uid, info.gid) == ((101, 101) if owned else (0, 0)), name


def test_the_recipe_is_recorded_in_the_layer_annotations(tmp_path: Path) -> None:
    desc = nginxbase.write_layout(bootstrap_tar(tmp_path / "rootfs.tar"), tmp_path / "layout")
    base = nginxbase.BaseImage(tmp_path / "layout", desc)
    assert nginxbase.recipe(base) == {
        "suite": "bookworm",
        "variant": "minbase",
        "packages": "nginx-light",
        "versions": "nginx-light=1.22.1-9+deb12u2",
        "tool": "mmdebstrap --mode=unshare",
    }
    manifest = Layout.open(tmp_path / "layout").read_manifest(desc)
    assert isinstance(manifest, Manifest)
    assert manifest.layers[0].annotations["dev.kaniko-pipeline.base.suite"] == "bookworm"


def test_a_rootfs_without_nginx_is_refused_with_the_reason(tmp_path: Path) -> None:
    tar = bootstrap_tar(tmp_path / "rootfs.tar", with_nginx=False)
    with pytest.raises(ImageError, match="has no /usr/sbin/nginx: nginx-light was not installed"):
        nginxlayer.write_layer(tar, tmp_path / "layer.tar.gz")
